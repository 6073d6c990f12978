"""The decision marker that connectors write into an ERP without idempotency keys.

Tryton (``ir.note``), Odoo (a chatter note) and ERPNext (a comment) accept no idempotency key, so
``decide`` writes ``portal-decision key=… outcome=… actor=…`` on the document *before* pressing the
ERP's button, and a retry reads it back: same outcome already in the ERP → replay; still waiting →
press now; decided otherwise → conflict. The first line is the marker; the comment follows.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass, field

NOTE_PREFIX = "portal-decision"
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class PortalNote:
    key: str
    outcome: str
    actor: str
    resource: str
    created_at: dt.datetime
    facts: dict[str, str] = field(default_factory=dict)  # any further ``name=value`` of the marker line


def note_text(key: str, outcome: str, actor: str, comment: str, facts: dict[str, str] | None = None) -> str:
    """The marker line (``facts`` are appended as ``name=value``: values without spaces), then ``comment``."""
    text = f"{NOTE_PREFIX} key={key} outcome={outcome} actor={actor}"
    text += "".join(f" {name}={value}" for name, value in (facts or {}).items())
    return f"{text}\n{comment}" if comment else text


def key_marker(key: str) -> str:
    """The part of a note to search for (``ilike``/``like``): the key with the space after it."""
    return f"{NOTE_PREFIX} key={key} "


def plain(markup: str) -> str:
    """HTML (Odoo's and Frappe's message bodies) as text: tags become line breaks, entities decoded."""
    return html.unescape(_TAGS.sub("\n", markup or "")).strip()


def parse_note(message: str, resource: str, created_at: dt.datetime) -> PortalNote | None:
    first = next((line.strip() for line in plain(message).splitlines() if line.strip()), "")
    parts = first.split(" ")
    if not parts or parts[0] != NOTE_PREFIX:
        return None
    fields = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
    if not fields.get("key") or not fields.get("outcome"):
        return None
    facts = {name: value for name, value in fields.items() if name not in {"key", "outcome", "actor"}}
    return PortalNote(fields["key"], fields["outcome"], fields.get("actor", ""), resource, created_at, facts)
