"""The dev inbox page: what each person's IM client would show, one phone per user.

Only mounted when DEV_INBOX_ENABLED (on in the demo, off by default in production), and only served on
loopback unless DEV_INBOX_ALLOW_REMOTE (``guard.py``). Like a real IM client, a phone acts only for a
person who proved who they are: its owner's portal password once per phone, remembered in this
browser's session (or the owner signed in, or staff for anyone but an administrator). Pressing a
card button here plays the platform's callback: it acts as the phone's owner, through the same
``handle_card_action`` → ``decide()`` → ``authorize()`` path as every platform. Refusals look like
"not found".
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from im.messages import IncomingMessage, deliver_message
from im.platforms.devinbox.adapter import PLATFORM, inbox_topic
from im.platforms.devinbox.models import DevInboxGroup, DevInboxMessage
from im.services import handle_card_action
from sso.models import language_of

PHONES_KEY = "devinbox_phones"


def proved_phones(request: HttpRequest) -> set[int]:
    """Users whose phone this browser has signed in to (their password, once per phone)."""
    return {int(pk) for pk in request.session.get(PHONES_KEY, []) if str(pk).isdigit()}


def may_use_phone(request: HttpRequest, owner: Any) -> bool:
    if owner.pk in proved_phones(request):
        return True
    viewer = request.user
    if viewer.is_authenticated and getattr(request, "link_session", None) is None:
        return viewer.pk == owner.pk or (viewer.is_staff and not owner.is_superuser)
    return False


def owner_proved_here(request: HttpRequest, user: Any) -> bool:
    """The dev inbox's own proof of who taps (sso.links platform proof): this browser signed in to
    the recipient's phone."""
    return user.pk in proved_phones(request)


def _owner_or_404(request: HttpRequest, user_id: int, *, usable: bool = False) -> Any:
    owner = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    # Administrators have no phone here unless this browser proved to be them; the same 404 as none.
    if owner is None or (owner.is_superuser and not may_use_phone(request, owner)):
        raise Http404()
    if usable and not may_use_phone(request, owner):
        raise Http404()
    return owner


def _phones(request: HttpRequest, selected: list) -> list[dict]:
    phones = []
    for user in selected:
        unlocked = may_use_phone(request, user)
        phones.append({
            "user": user,
            "topic": inbox_topic(user.pk),
            "unlocked": unlocked,
            "messages": DevInboxMessage.objects.filter(recipient=user)[:20] if unlocked else [],
            # The phone's own words (buttons, placeholders) in its owner's language, like its cards.
            "language": language_of(user),
        })
    return phones


def _phone_response(request: HttpRequest, owner: Any, **extra: Any) -> HttpResponse:
    return render(request, "devinbox/_phone.html", {"phone": _phones(request, [owner])[0], **extra})


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    users = list(get_user_model().objects.filter(is_active=True, is_superuser=False).order_by("username"))
    wanted = request.GET.getlist("user")
    selected = [u for u in users if u.username in wanted] if wanted else users
    return render(request, "devinbox/inbox.html", {"users": users, "phones": _phones(request, selected)})


@require_GET
def phone(request: HttpRequest, user_id: int) -> HttpResponse:
    return _phone_response(request, _owner_or_404(request, user_id))


@require_POST
def unlock(request: HttpRequest, user_id: int) -> HttpResponse:
    """Sign in to one phone with its owner's portal password (django-axes counts failures)."""
    owner = _owner_or_404(request, user_id)
    error = ""
    try:
        proved = authenticate(request, username=owner.get_username(), password=request.POST.get("password", ""))
    except PermissionDenied:
        proved = None
        error = _("Too many wrong passwords. Try again later.")
    if proved is not None and proved.pk == owner.pk:
        request.session[PHONES_KEY] = sorted(proved_phones(request) | {owner.pk})
    else:
        error = error or _("That password is not right.")
    if request.headers.get("HX-Request"):
        response = _phone_response(request, owner, error=error)
        if not error:
            # A live socket reads the phones its session proved when it connects (the phone's topic is
            # its owner's alone): reload the page so it reconnects as a socket that may watch this phone.
            response["HX-Refresh"] = "true"
        return response
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('devinbox:inbox')}?user={owner.get_username()}")


@require_POST
def lock(request: HttpRequest, user_id: int) -> HttpResponse:
    owner = _owner_or_404(request, user_id)
    request.session[PHONES_KEY] = sorted(proved_phones(request) - {owner.pk})
    return redirect(f"{reverse('devinbox:inbox')}?user={owner.get_username()}")


@require_POST
def action(request: HttpRequest, message_id: int, action_id: str) -> HttpResponse:
    message = DevInboxMessage.objects.select_related("recipient").filter(pk=message_id).first()
    if message is None or not may_use_phone(request, message.recipient):
        raise Http404()
    try:
        notice = handle_card_action(PLATFORM, str(message.pk), message.recipient, action_id)
    except LookupError as exc:
        raise Http404() from exc
    return _phone_response(request, message.recipient, notice=notice)


@require_POST
def ask(request: HttpRequest, user_id: int) -> HttpResponse:
    """A message to the bot typed on a phone: asked as the phone's owner (as the platform would say
    who sent it); the answer card arrives on that phone through the outbox like every card."""
    user = _owner_or_404(request, user_id, usable=True)
    text = request.POST.get("text", "").strip()
    if not text or len(text) > 1000:
        return HttpResponseBadRequest("text: 1 to 1000 characters")
    deliver_message(IncomingMessage(PLATFORM, user, text, conversation=f"{PLATFORM}:{user.pk}"))
    if not request.headers.get("HX-Request"):  # the plain form, without htmx: back to that phone
        return redirect(f"{reverse('devinbox:inbox')}?user={user.get_username()}")
    return _phone_response(request, user)


def usable_members(request: HttpRequest, chat: DevInboxGroup) -> dict[str, Any]:
    """The group's portal members this browser may act for, by address."""
    members = get_user_model().objects.filter(
        pk__in=[int(a) for a in chat.members if str(a).isdigit()], is_active=True)
    return {str(u.pk): u for u in members if may_use_phone(request, u)}


def group_for(request: HttpRequest, group_id: int) -> DevInboxGroup:
    """A group chat this browser may read: one of its members' phones is signed in here (or staff)."""
    chat = DevInboxGroup.objects.filter(pk=group_id).first()
    staff = request.user.is_authenticated and request.user.is_staff
    if chat is None or not (staff or usable_members(request, chat)):
        raise Http404()
    return chat


@require_GET
def groups(request: HttpRequest) -> HttpResponse:
    staff = request.user.is_authenticated and request.user.is_staff
    chats = [g for g in DevInboxGroup.objects.all()[:100] if staff or usable_members(request, g)]
    return render(request, "devinbox/groups.html", {"groups": chats})


@require_GET
def group(request: HttpRequest, group_id: int, body: bool = False) -> HttpResponse:
    """A group chat's "phone": every message and pinned widget, and who is in it. ``body``: only the
    messages, which the page refetches when the group's live topic moves."""
    chat = group_for(request, group_id)
    users = {str(u.pk): u for u in get_user_model().objects.filter(pk__in=[
        int(a) for a in chat.members if str(a).isdigit()])}
    members = [
        (users[a].get_full_name() or users[a].get_username()) if a in users else str(a).removeprefix("ext:")
        for a in chat.members
    ]
    # Not "messages": base.html shows Django's messages under that name, as banners at the top.
    context = {"group": chat, "members": members, "chat_messages": chat.messages.all(),
               "speakers": list(usable_members(request, chat).values())}
    return render(request, "devinbox/_group_messages.html" if body else "devinbox/group.html", context)


@require_POST
def group_ask(request: HttpRequest, group_id: int) -> HttpResponse:
    """A member writes "@bot …" in a group chat (only a member whose phone this browser signed in to,
    or staff): the answer appears in the group (what every member may see) and, for the rest, on the
    asker's phone."""
    chat = group_for(request, group_id)
    text = request.POST.get("text", "").strip()
    speaker = request.POST.get("member", "")
    if not text or len(text) > 1000 or speaker not in [str(m) for m in chat.members] or not speaker.isdigit():
        return HttpResponseBadRequest("a member of this group and a text of 1 to 1000 characters")
    users = {str(u.pk): u for u in get_user_model().objects.filter(
        pk__in=[int(m) for m in chat.members if str(m).isdigit()], is_active=True)}
    if speaker not in users:
        return HttpResponseBadRequest("unknown member")
    if not may_use_phone(request, users[speaker]):
        raise Http404()  # writing as someone this browser has not proved to be
    # Everyone in the chat reads the public answer; someone the portal does not know may see nothing.
    audience = [users.get(str(m), AnonymousUser()) for m in chat.members]
    deliver_message(IncomingMessage(PLATFORM, users[speaker], text, conversation=f"{PLATFORM}:group:{chat.pk}",
                                    chat_id=str(chat.pk), audience=audience))
    return redirect("devinbox:group", group_id=chat.pk)
