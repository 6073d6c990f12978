"""Replies from Matrix users reach the portal: a ``/sync`` long-poll loop as the bot.

A reply to a card (``m.relates_to.m.in_reply_to`` the card's event) whose first line is one of the
card's action ids or labels ("approve", "批准") is that action, by the sender, resolved through
``ImIdentity(platform="matrix")``; it goes through ``handle_card_action`` → ``decide()`` →
``authorize()`` like every card button. The bot answers in the room with a notice.

Any other message is a question for the chat bot (``bot``): in the bot's direct room with the
sender always, in a group room only when it names the bot. A group's answer shows only what every
member may see; the rest goes to the asker's direct room.

The sync position (``next_batch``) is kept in the bot's own account data, so a restarted loop goes
on where it stopped; a first start skips the history (old replies are not acted on again).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from im.platforms.matrix.adapter import PLATFORM, MatrixAdapter, message_id_of
from im.platforms.matrix.client import MatrixError

logger = logging.getLogger(__name__)

SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
SYNC_POSITION = "org.erp_im_portal.sync"
SYNC_FILTER = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "timeline": {"types": ["m.room.message"], "limit": 50},
        "state": {"lazy_load_members": True, "types": []},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


def command_text(content: dict[str, Any]) -> str:
    """The first line the person wrote, without the quoted reply fallback ("> …") older clients add."""
    lines = [line for line in str(content.get("body", "")).splitlines() if not line.startswith(">")]
    return next((line.strip() for line in lines if line.strip()), "")


def _action_for(text: str, actions: list[dict[str, Any]]) -> str | None:
    wanted = text.casefold()
    for action in actions:
        if wanted in (str(action.get("id", "")).casefold(), str(action.get("label", "")).casefold()):
            return action["id"]
    return None


def handle_event(adapter: MatrixAdapter, room_id: str, event: dict[str, Any]) -> str | None:
    """Act on one timeline event; returns the notice sent back, or None when it was not for us."""
    from im.models import MessageRef
    from im.services import handle_card_action
    from sso.models import ImIdentity, language_of

    content = event.get("content") or {}
    sender = event.get("sender", "")
    if event.get("type") != "m.room.message" or sender == adapter.client.whoami():
        return None
    if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
        return None  # an edit of an earlier reply is not a new command
    replied_to = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
    message_id = message_id_of(room_id, replied_to) if replied_to else ""
    ref = (
        MessageRef.objects.filter(platform=PLATFORM, message_id=message_id).select_related("delivery").first()
        if replied_to
        else None
    )
    if ref is None:
        return _ask_the_bot(adapter, room_id, event)
    identity = ImIdentity.objects.filter(platform=PLATFORM, external_id=sender).select_related("user").first()
    actor = identity.user if identity and identity.user.is_active else None
    with translation.override(language_of(actor)):
        if actor is None:
            notice = _("Your Matrix account is not linked to a portal user.")
        else:
            actions = (ref.delivery.card or {}).get("actions", [])
            text = command_text(content)
            action_id = _action_for(text, actions)
            if action_id is None and not actions and SLUG.match(text.casefold()):
                # A command on a card that was decided meanwhile: the topic's handler answers with
                # the current state ("already approved by 李四 …") rather than an error.
                action_id = text.casefold()
            if action_id is None:
                choices = ", ".join(a["id"] for a in actions)
                notice = (
                    _("Reply to the card with one of: %(choices)s") % {"choices": choices}
                    if actions  # nothing left to do on this card: say where it stands
                    else (ref.delivery.card or {}).get("status_label") or _("This action is no longer available.")
                )
            else:
                try:
                    notice = handle_card_action(PLATFORM, message_id, actor, action_id)
                except LookupError:
                    notice = _("This action is no longer available.")
    adapter.reply_notice(room_id, event["event_id"], str(notice))
    return str(notice)


def _ask_the_bot(adapter: MatrixAdapter, room_id: str, event: dict[str, Any]) -> str | None:
    """A question for the chat bot; returns what was answered (for the loop's log), or None."""
    from im.messages import IncomingMessage, deliver_message, has_message_handler
    from sso.models import ImIdentity

    if not has_message_handler():
        return None
    if (event.get("content") or {}).get("msgtype") == "m.notice":
        return None  # notices are bots talking: never answer one (no bot-to-bot loops)
    text = command_text(event.get("content") or {})
    bot_id = adapter.client.whoami()
    members = adapter.client.joined_members(room_id)
    direct = len(members) <= 2
    mentioned = bot_id in text or bot_id.split(":", 1)[0].lstrip("@") in text.casefold() or "@bot" in text.casefold()
    if not text or not (direct or mentioned):
        return None
    linked = {
        identity.external_id: identity.user
        for identity in ImIdentity.objects.filter(platform=PLATFORM, external_id__in=members).select_related("user")
        if identity.user.is_active
    }
    asker = linked.get(event.get("sender", ""))
    if asker is None:
        notice = _("Your Matrix account is not linked to a portal user.")
        adapter.reply_notice(room_id, event["event_id"], notice)
        return notice
    question = text.replace(bot_id, "").strip()
    if direct:
        return deliver_message(IncomingMessage(PLATFORM, asker, question, conversation=f"matrix:{room_id}"))
    # Members the portal does not know see nothing: a group answer is then public-free.
    from django.contrib.auth.models import AnonymousUser

    audience = [linked.get(member) or AnonymousUser() for member in members if member != bot_id]
    return deliver_message(IncomingMessage(PLATFORM, asker, question, conversation=f"{PLATFORM}:group:{room_id}",
                                           chat_id=room_id, audience=audience))


def handle_sync_response(adapter: MatrixAdapter, response: dict[str, Any]) -> list[str]:
    """Every reply command in one ``/sync`` answer; the notices sent back."""
    notices = []
    for room_id, room in ((response.get("rooms") or {}).get("join") or {}).items():
        for event in (room.get("timeline") or {}).get("events", []):
            try:
                notice = handle_event(adapter, room_id, event)
            except MatrixError:
                logger.exception("could not answer %s in %s", event.get("event_id"), room_id)
                continue
            if notice is not None:
                notices.append(notice)
    return notices


def sync_once(adapter: MatrixAdapter, *, timeout_ms: int = 30_000) -> list[str]:
    """One long poll: handle what arrived, then save the new position."""
    client = adapter.client
    since = client.account_data(SYNC_POSITION).get("next_batch")
    if since is None:
        # First start: take the current position without acting on the history.
        first = client.sync(None, timeout_ms=0, sync_filter={**SYNC_FILTER, "room": {"timeline": {"limit": 0}}},
                            timeout=60)
        client.set_account_data(SYNC_POSITION, {"next_batch": first["next_batch"]})
        return []
    response = client.sync(since, timeout_ms=timeout_ms, sync_filter=SYNC_FILTER, timeout=timeout_ms / 1000 + 30)
    notices = handle_sync_response(adapter, response)
    client.set_account_data(SYNC_POSITION, {"next_batch": response["next_batch"]})
    return notices
