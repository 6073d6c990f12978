"""The dev inbox page: what each person's IM client would show, one phone per user.

Only mounted when DEV_INBOX_ENABLED (on in the demo, off by default in production). Pressing a card
button here plays the platform's callback: it acts as the phone's owner, through the same
``handle_card_action`` → ``decide()`` → ``authorize()`` path as every platform.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from im.adapters.devinbox.adapter import PLATFORM, inbox_topic
from im.adapters.devinbox.models import DevInboxMessage
from im.messages import IncomingMessage, deliver_message
from im.services import handle_card_action


def _phones(selected: list) -> list[dict]:
    return [
        {
            "user": user,
            "topic": inbox_topic(user.pk),
            "messages": DevInboxMessage.objects.filter(recipient=user)[:20],
        }
        for user in selected
    ]


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    users = list(get_user_model().objects.filter(is_active=True, is_superuser=False).order_by("username"))
    wanted = request.GET.getlist("user")
    selected = [u for u in users if u.username in wanted] if wanted else users
    return render(request, "devinbox/inbox.html", {"users": users, "phones": _phones(selected)})


@require_GET
def phone(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id, is_active=True)
    return render(request, "devinbox/_phone.html", {"phone": _phones([user])[0]})


@require_POST
def action(request: HttpRequest, message_id: int, action_id: str) -> HttpResponse:
    message = DevInboxMessage.objects.select_related("recipient").filter(pk=message_id).first()
    if message is None:
        raise Http404()
    try:
        notice = handle_card_action(PLATFORM, str(message.pk), message.recipient, action_id)
    except LookupError as exc:
        raise Http404() from exc
    return render(request, "devinbox/_phone.html", {"phone": _phones([message.recipient])[0], "notice": notice})


@require_POST
def ask(request: HttpRequest, user_id: int) -> HttpResponse:
    """A message to the bot typed on a phone: asked as the phone's owner (as the platform would say
    who sent it); the answer card arrives on that phone through the outbox like every card."""
    user = get_object_or_404(get_user_model(), pk=user_id, is_active=True)
    text = request.POST.get("text", "").strip()
    if not text or len(text) > 1000:
        return HttpResponseBadRequest("text: 1 to 1000 characters")
    deliver_message(IncomingMessage(PLATFORM, user, text, conversation=f"{PLATFORM}:{user.pk}"))
    if not request.headers.get("HX-Request"):  # the plain form, without htmx: back to that phone
        return redirect(f"{reverse('devinbox:inbox')}?user={user.get_username()}")
    return render(request, "devinbox/_phone.html", {"phone": _phones([user])[0]})


@require_POST
def group_ask(request: HttpRequest, group_id: int) -> HttpResponse:
    """A member writes "@bot …" in a group chat: the answer appears in the group (what every member may
    see) and, for the rest, on the asker's phone."""
    from im.adapters.devinbox.models import DevInboxGroup

    chat = get_object_or_404(DevInboxGroup, pk=group_id)
    text = request.POST.get("text", "").strip()
    speaker = request.POST.get("member", "")
    if not text or len(text) > 1000 or speaker not in [str(m) for m in chat.members] or not speaker.isdigit():
        return HttpResponseBadRequest("a member of this group and a text of 1 to 1000 characters")
    users = {str(u.pk): u for u in get_user_model().objects.filter(
        pk__in=[int(m) for m in chat.members if str(m).isdigit()], is_active=True)}
    if speaker not in users:
        return HttpResponseBadRequest("unknown member")
    # Everyone in the chat reads the public answer; someone the portal does not know may see nothing.
    audience = [users.get(str(m), AnonymousUser()) for m in chat.members]
    deliver_message(IncomingMessage(PLATFORM, users[speaker], text, conversation=f"{PLATFORM}:group:{chat.pk}",
                                    chat_id=str(chat.pk), audience=audience))
    return redirect("devinbox:group", group_id=chat.pk)


@require_GET
def groups(request: HttpRequest) -> HttpResponse:
    from im.adapters.devinbox.models import DevInboxGroup

    return render(request, "devinbox/groups.html", {"groups": DevInboxGroup.objects.all()[:100]})


@require_GET
def group(request: HttpRequest, group_id: int) -> HttpResponse:
    """A group chat's "phone": every message and pinned widget, and who is in it."""
    from im.adapters.devinbox.models import DevInboxGroup

    chat = get_object_or_404(DevInboxGroup, pk=group_id)
    users = {str(u.pk): u for u in get_user_model().objects.filter(pk__in=[
        int(a) for a in chat.members if str(a).isdigit()])}
    members = [
        (users[a].get_full_name() or users[a].get_username()) if a in users else str(a).removeprefix("ext:")
        for a in chat.members
    ]
    return render(request, "devinbox/group.html", {"group": chat, "members": members, "messages": chat.messages.all()})
