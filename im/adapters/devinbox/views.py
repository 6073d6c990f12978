"""The dev inbox page: what each person's IM client would show, one phone per user.

Only mounted when DEV_INBOX_ENABLED (on in the demo, off by default in production). Pressing a card
button here plays the platform's callback: it acts as the phone's owner, through the same
``handle_card_action`` → ``decide()`` → ``authorize()`` path as every platform.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from im.adapters.devinbox.adapter import PLATFORM, inbox_topic
from im.adapters.devinbox.models import DevInboxMessage
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
