"""A neutral ``Card`` as WeCom application messages (developer.work.weixin.qq.com, 发送应用消息).

- With actions: a ``template_card`` of type ``button_interaction``: title and status, up to 6 fields as
  ``horizontal_content_list``, the whole card opens the link (``card_action`` type 1), one callback
  button per action (``key`` = the action id). Its ``task_id`` is our message reference: the
  ``template_card_event`` callback carries it back with the button's key.
- Without actions: a ``textcard`` (title, description, link, button text). WeCom cannot edit it.
- Limits from the documentation: main title 26 characters (desc 30), field names 5 and values 26
  characters, 6 fields, 6 buttons of 10 characters, sub title 112 characters; ``textcard`` title 128
  and description 512 bytes, button text 4 characters. Longer text is cut with "…": the link shows all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from im.cards import Card
from im.platforms.httpjson import card_rows, clip, clip_bytes, link_of

MAX_FIELDS = 6
MAX_BUTTONS = 6
# WeCom's button styles are 1–4 (colours); 1 is the default blue.
BUTTON_STYLE = {"primary": 1, "danger": 2, "default": 4}


def task_id_for(idempotency_key: str) -> str:
    """A task id (digits, letters and ``_-@``, at most 128 bytes, unique per app) from a delivery key.

    The same delivery always gets the same task id, so the reference is known before the send."""
    return "portal-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


def template_card(card: Card, task_id: str) -> dict[str, Any]:
    """The ``template_card`` object (``button_interaction``) of ``card``."""
    with translation.override(card.locale or None):
        rows = card_rows(card)
        content: dict[str, Any] = {
            "card_type": "button_interaction",
            "main_title": {"title": clip(card.title, 26), "desc": clip(card.status_label, 30)},
            "horizontal_content_list": [
                {"keyname": clip(label, 5), "value": clip(value, 26)} for label, value in rows[:MAX_FIELDS]
            ],
            "card_action": {"type": 1, "url": link_of(card)},
            "task_id": task_id,
            "button_list": [
                {"text": clip(a.label, 10), "style": BUTTON_STYLE.get(a.style, 4), "key": a.id}
                for a in card.actions[:MAX_BUTTONS]
            ],
        }
        if card.note or len(rows) > MAX_FIELDS:
            more = _("%(count)s more fields: open the card") % {"count": len(rows) - MAX_FIELDS} \
                if len(rows) > MAX_FIELDS else ""
            content["sub_title_text"] = clip(" ".join(filter(None, [card.note, more])), 112)
    return content


def textcard(card: Card) -> dict[str, Any]:
    """The ``textcard`` object of ``card`` (no buttons, only the link)."""
    with translation.override(card.locale or None):
        lines = [f'<div class="highlight">{card.status_label}</div>']
        lines += [f'<div class="normal">{label}: {value}</div>' for label, value in card_rows(card)]
        if card.note:
            lines.append(f'<div class="gray">{card.note}</div>')
        return {
            "title": clip_bytes(card.title, 128),
            "description": clip_bytes("".join(lines), 512),
            "url": link_of(card),
            "btntxt": clip(card.link_label or _("Open"), 4),
        }


def widget_card(title: str, url: str) -> dict[str, Any]:
    """A ``textcard`` that opens a widget page (WeCom has no pinned widgets; an H5 link is the way)."""
    return {"title": clip_bytes(title, 128), "description": clip_bytes(_("Open the live view"), 512), "url": url,
            "btntxt": clip(_("Open"), 4)}
