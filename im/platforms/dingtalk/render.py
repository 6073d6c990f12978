"""A neutral ``Card`` as DingTalk messages (open.dingtalk.com, 消息通知 › 工作通知消息类型).

- To a person: an ``oa`` work notification: head, title, fields as ``body.form`` rows, the note as
  ``body.content``, the status in ``status_bar`` (the one part DingTalk lets us change later), and the
  link as ``message_url``. Work notifications have no callback buttons: actions happen on the page the
  link opens (through the same ``decide()``/``authorize()``), and the status bar then shows the outcome.
- To a group: an ``action_card`` (markdown and one link button).
- Limits (documented or kept conservatively under them): head text 10 characters, title 50, 6 form rows
  of 20/80 characters, content 500, status 20 characters; markdown 5000 characters.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.utils import translation
from django.utils.translation import gettext as _

from im.cards import Card
from im.platforms.httpjson import card_rows, clip, link_of

MAX_FORM_ROWS = 6
# ARGB as DingTalk writes it: green for done, red for refused, blue for waiting, grey otherwise.
STATUS_COLOUR = {"approved": "0xFF78C06E", "rejected": "0xFFF65E5E", "pending": "0xFF3296FA"}
GREY = "0xFF999999"


def status_bar(card: Card) -> dict[str, str]:
    return {"status_value": clip(card.status_label, 20), "status_bg": STATUS_COLOUR.get(card.status, GREY)}


def oa_message(card: Card) -> dict[str, Any]:
    """The ``msg`` object of a work notification showing ``card``."""
    with translation.override(card.locale or None):
        rows = card_rows(card)
        content = [card.note] if card.note else []
        if len(rows) > MAX_FORM_ROWS:
            content.append(_("%(count)s more fields: open the card") % {"count": len(rows) - MAX_FORM_ROWS})
        body: dict[str, Any] = {
            "title": clip(card.title, 50),
            "form": [{"key": clip(label, 20) + "：", "value": clip(value, 80)}
                     for label, value in rows[:MAX_FORM_ROWS]],
        }
        if content:
            body["content"] = clip(" ".join(content), 500)
        return {"msgtype": "oa", "oa": {
            "message_url": link_of(card),
            "pc_message_url": link_of(card),
            "head": {"bgcolor": "FF3296FA", "text": clip(_("Approvals") if card.actions else _("Notice"), 10)},
            "status_bar": status_bar(card),
            "body": body,
        }}


def _md(text: str) -> str:
    # Brackets would let a value write its own link: show them as full-width brackets instead.
    return str(text).replace("[", "［").replace("]", "］")


def action_card(card: Card) -> dict[str, Any]:
    """The ``msg`` object of a group message showing ``card`` (only what every member may see)."""
    with translation.override(card.locale or None):
        lines = [f"### {_md(card.title)}", f"**{_md(card.status_label)}**"]
        lines += [f"- {_md(label)}: {_md(value)}" for label, value in card_rows(card)]
        if card.note:
            lines.append(_md(card.note))
        return {"msgtype": "action_card", "action_card": {
            "title": clip(card.title, 50),
            "markdown": clip("\n\n".join(lines), 5000),
            "single_title": clip(card.link_label or _("Open"), 20),
            "single_url": link_of(card),
        }}


def side_panel_url(url: str) -> str:
    """DingTalk's link scheme that opens ``url`` in the desktop client's side panel (a widget)."""
    return f"dingtalk://dingtalkclient/page/link?url={quote(url, safe='')}&pc_slide=true"


def widget_card(title: str, url: str) -> dict[str, Any]:
    return {"msgtype": "action_card", "action_card": {
        "title": clip(title, 50),
        "markdown": f"### {_md(clip(title, 200))}\n\n{_('Open the live view')}",
        "single_title": clip(_("Open"), 20),
        "single_url": side_panel_url(url),
    }}
