"""A neutral ``Card`` as Slack Block Kit, within Slack's published limits.

Limits (api.slack.com/reference/block-kit): 50 blocks per message; a header's plain text 150
characters; a section's text 3,000; at most 10 section fields of 2,000 each; a button's text 75,
its ``value`` 2,000 and ``url`` 3,000; at most 25 elements in an actions block; the top-level
``text`` (the notification fallback) is cut by Slack after 40,000 and should stay under 4,000.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from im.cards import Card

MAX_BLOCKS = 50
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
FIELDS_PER_SECTION = 10
BUTTON_TEXT_CHARS = 75
BUTTON_VALUE_CHARS = 2000
URL_CHARS = 3000
ACTIONS_PER_BLOCK = 25
FALLBACK_CHARS = 4000
# The action id of the link button: Slack sends a block_actions request for URL buttons too,
# which the callback must ignore.
OPEN_LINK = "portal.open"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn control characters (``&``, ``<``, ``>``); everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def _mrkdwn(text: str, limit: int = SECTION_CHARS) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def fallback_text(card: Card) -> str:
    """The notification text (and what screen readers and old clients show)."""
    return clip(f"{card.title} — {card.status_label}", FALLBACK_CHARS)


def render_card(card: Card) -> dict[str, Any]:
    """``{"text": …, "blocks": […]}`` for chat.postMessage / chat.update."""
    with translation.override(card.locale or None):
        head: list[dict[str, Any]] = [
            {"type": "header", "text": _plain(card.title, HEADER_CHARS)},
            {"type": "section", "text": _mrkdwn(f"*{escape(card.status_label)}*")},
        ]
        rows = [(f.label, f.value) for f in card.fields]
        if card.amount:
            rows.append((_("Amount"), card.amount))
        body: list[dict[str, Any]] = []
        for start in range(0, len(rows), FIELDS_PER_SECTION):
            chunk = rows[start:start + FIELDS_PER_SECTION]
            fields = [_mrkdwn(f"*{escape(label)}*\n{escape(value)}", FIELD_CHARS) for label, value in chunk]
            body.append({"type": "section", "fields": fields})
        if card.note:
            body.append({"type": "context", "elements": [_mrkdwn(escape(card.note))]})
        buttons: list[dict[str, Any]] = []
        for action in card.actions[: ACTIONS_PER_BLOCK - 1]:
            button = {
                "type": "button",
                "action_id": action.id[:255],
                "value": action.id[:BUTTON_VALUE_CHARS],
                "text": _plain(action.label, BUTTON_TEXT_CHARS),
            }
            if action.style in ("primary", "danger"):
                button["style"] = action.style
            if action.confirm:  # Slack asks before it sends the press (a "confirm" composition object)
                button["confirm"] = {"title": _plain(action.label, 100), "text": _plain(action.confirm, 300),
                                     "confirm": _plain(action.label, 30), "deny": _plain(_("Cancel"), 30)}
            buttons.append(button)
        if card.link and len(card.link) <= URL_CHARS:
            buttons.append({"type": "button", "action_id": OPEN_LINK, "url": card.link,
                            "text": _plain(card.link_label or _("Open"), BUTTON_TEXT_CHARS)})
        tail = [{"type": "actions", "elements": buttons}] if buttons else []
        room = MAX_BLOCKS - len(head) - len(tail)
        if len(body) > room:
            # Too many fields for one message: keep what fits and say the rest is in the portal.
            body = body[: room - 1] + [{"type": "context", "elements": [_mrkdwn(_("More in the portal."))]}]
    return {"text": fallback_text(card), "blocks": head + body + tail}


def render_notice(text: str) -> dict[str, Any]:
    return {"text": clip(text, FALLBACK_CHARS)}
