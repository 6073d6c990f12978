"""A neutral ``Card`` as a Matrix ``m.room.message``: plain ``body`` and ``org.matrix.custom.html``.

Matrix has no buttons. Actions follow a reply-command convention: the card asks the reader to reply
to it with the action's id or label ("approve" / "批准"); ``inbound.py`` reads such replies from
``/sync``. The card link (signed, single use) opens the page where the same decision can be made.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from im.cards import Card

# Well under Synapse's 64 KiB event limit (the whole event, with signatures, counts).
MAX_BODY_CHARS = 16_000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_card(card: Card) -> dict[str, Any]:
    """The ``m.room.message`` content of ``card``, in the card's own language."""
    with translation.override(card.locale or None):
        lines = [card.title, card.status_label]
        html = [f"<p><strong>{escape(card.title)}</strong><br><em>{escape(card.status_label)}</em></p>"]
        rows = [(f.label, f.value) for f in card.fields]
        if card.amount:
            rows.append((_("Amount"), card.amount))
        if rows:
            lines += [f"{label}: {value}" for label, value in rows]
            items = "".join(f"<li><strong>{escape(label)}</strong>: {escape(value)}</li>" for label, value in rows)
            html.append(f"<ul>{items}</ul>")
        if card.note:
            lines.append(card.note)
            html.append(f"<p>{escape(card.note)}</p>")
        lines.append(f"{card.link_label}: {card.link}")
        html.append(f'<p><a href="{escape(card.link)}">{escape(card.link_label)}</a></p>')
        if card.actions:
            choices = ", ".join(f"{a.id} ({a.label})" for a in card.actions)
            lines.append(_("Reply to this message with one of: %(choices)s") % {"choices": choices})
            codes = ", ".join(f"<code>{escape(a.id)}</code> ({escape(a.label)})" for a in card.actions)
            html.append("<p>" + _("Reply to this message with one of: %(choices)s") % {"choices": codes} + "</p>")
    content = {"msgtype": "m.text", "body": _clip("\n".join(lines), MAX_BODY_CHARS)}
    formatted = "".join(html)
    if len(formatted) <= MAX_BODY_CHARS:  # cutting HTML would break it: too long means plain text only
        content.update(format="org.matrix.custom.html", formatted_body=formatted)
    return content


def render_edit(event_id: str, card: Card) -> dict[str, Any]:
    """An ``m.replace`` edit of ``event_id`` showing ``card``; clients without edits see the "* " fallback."""
    new = render_card(card)
    content = {"msgtype": new["msgtype"], "body": "* " + new["body"]}
    if "formatted_body" in new:
        content.update(format=new["format"], formatted_body="* " + new["formatted_body"])
    content.update({"m.new_content": new, "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}})
    return content
