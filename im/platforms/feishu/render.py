"""A neutral ``Card`` as a Feishu/Lark message card (``msg_type: interactive``, card JSON 1.0).

- ``config.update_multi: true``: a shared card, which the documentation requires for PATCH updates.
- Header with the title, coloured by status; the status line; fields as plain text (no markdown, so a
  value cannot inject links or mentions); the note; then one ``button`` per action whose ``value``
  carries ``{"action": <id>}`` (the callback brings the card's ``open_message_id``, our reference),
  and a link button to the page.
- Size: a card must stay under 30 KB; fields are dropped from the end (with a line saying so) until it fits.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from im.cards import Card
from im.platforms.httpjson import clip

MAX_CARD_BYTES = 30 * 1024
BUTTON_TYPE = {"primary": "primary", "danger": "danger", "default": "default"}
HEADER_COLOUR = {"pending": "blue", "approved": "green", "rejected": "red", "cancelled": "grey", "no_access": "grey"}


def _text(content: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": content}


def card_json(card: Card) -> dict[str, Any]:
    """The card JSON of ``card``, at most ``MAX_CARD_BYTES`` once serialised."""
    rows = [(f.label, f.value) for f in card.fields]
    with translation.override(card.locale or None):
        if card.amount:
            rows.append((_("Amount"), card.amount))
        for keep in range(len(rows), -1, -1):
            content = _build(card, rows[:keep], dropped=len(rows) - keep)
            if len(json.dumps(content, ensure_ascii=False).encode()) <= MAX_CARD_BYTES:
                return content
        # Even without fields too big (a huge title or note): cut the free texts hard.
        return _build(card, [], dropped=len(rows), limit=1000)


def _build(card: Card, rows: list[tuple[str, str]], *, dropped: int, limit: int = 5000) -> dict[str, Any]:
    elements: list[dict[str, Any]] = [{"tag": "div", "text": _text(clip(card.status_label, limit))}]
    if rows:
        elements.append({
            "tag": "div",
            "fields": [{"is_short": True, "text": _text(f"{clip(label, 200)}: {clip(value, limit)}")}
                       for label, value in rows],
        })
    notes = [clip(card.note, limit)] if card.note else []
    if dropped:
        notes.append(_("%(count)s more fields: open the card") % {"count": dropped})
    if notes:
        elements.append({"tag": "note", "elements": [_text(n) for n in notes]})
    buttons: list[dict[str, Any]] = [
        {"tag": "button", "text": _text(clip(a.label, 40)), "type": BUTTON_TYPE.get(a.style, "default"),
         "value": {"action": a.id},
         # Feishu shows a confirmation dialog before it calls back.
         **({"confirm": {"title": _text(clip(a.label, 40)), "text": _text(clip(a.confirm, 200))}} if a.confirm else {})}
        for a in card.actions
    ]
    if card.link:
        buttons.append({"tag": "button", "text": _text(clip(card.link_label or _("Open"), 40)), "type": "default",
                        "url": card.link})
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {
        "config": {"wide_screen_mode": True, "update_multi": True},
        "header": {"title": _text(clip(card.title, 200)), "template": HEADER_COLOUR.get(card.status, "blue")},
        "elements": elements,
    }


def widget_card(title: str, url: str) -> dict[str, Any]:
    """A card whose button opens a widget page in Feishu's in-app browser."""
    return {
        "config": {"wide_screen_mode": True, "update_multi": True},
        "header": {"title": _text(clip(title, 200)), "template": "blue"},
        "elements": [{"tag": "action", "actions": [
            {"tag": "button", "text": _text(_("Open the live view")), "type": "primary", "url": url},
        ]}],
    }
