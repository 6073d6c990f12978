"""What an ERP event (or a stored topic) is about, in the mirror: a registry the domain apps fill.

Each app that mirrors something registers its kind of subject in ``AppConfig.ready()``::

    register_subject_kind("stock", event_types=("erp.stock.changed",), from_event=..., from_id=...)

Generic consumers (notification rules, foresight's cards) then ask ``subject_of(event)`` or
``subject_for_topic("stock.12")`` and never import the domains. The ``facts`` are the flat values rule
conditions and card templates read (``{amount}``, ``{warehouse}``), formatted with ``money``/``quantity``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erp.events import ErpEvent


@dataclass
class EventSubject:
    """The mirrored object an event or a topic is about: what ``authorize(user, view_action, obj)`` is
    asked about, its live topic, the facts templates read, and the page that shows it (if any)."""

    topic: str
    obj: Any
    view_action: str
    facts: dict[str, Any]
    link_path: str = ""
    # Ids of objects of the same kind written after this one in the same set-based write of a worker's
    # batch (erp.handling): handled one by one they would not exist yet when this subject's rules ran, so
    # rules comparing with other objects (notifications' "usual amount") leave them out.
    unseen: frozenset[int] = frozenset()


FromEvent = Callable[[ErpEvent], EventSubject | None]
FromId = Callable[[int], EventSubject | None]
FromObject = Callable[[Any], EventSubject | None]


@dataclass(frozen=True)
class SubjectKind:
    kind: str  # the topic prefix: "approval" for "approval.12"
    event_types: tuple[str, ...]  # exact types, or prefixes ending in "." ("erp.approval.")
    from_event: FromEvent
    from_id: FromId
    # The ERP's status code (``approved``, ``delayed``) as a label in the active language.
    status_label: Callable[[str], str] | None = None
    # The subject of an object the caller holds already (read and locked by it): saves reading it again.
    from_object: FromObject | None = None

    def handles(self, event_type: str) -> bool:
        return any(event_type == t or (t.endswith(".") and event_type.startswith(t)) for t in self.event_types)


_KINDS: dict[str, SubjectKind] = {}


def register_subject_kind(kind: str, *, event_types: Iterable[str], from_event: FromEvent, from_id: FromId,
                          status_label: Callable[[str], str] | None = None,
                          from_object: FromObject | None = None) -> None:
    """Make topics ``<kind>.<pk>`` and the listed event types resolvable (idempotent per kind)."""
    _KINDS[kind] = SubjectKind(kind, tuple(event_types), from_event, from_id, status_label, from_object)


def status_label(kind: str, code: str) -> str:
    """A status code as the kind's app words it in the active language; the code itself otherwise."""
    registered = _KINDS.get(kind)
    return registered.status_label(code) if registered and registered.status_label else code


def subject_kinds() -> dict[str, SubjectKind]:
    return dict(_KINDS)


def subject_of(event: ErpEvent) -> EventSubject | None:
    """The mirrored object the event is about (its handler has just written it); None when no app
    registered the event's type, or the object is not in the mirror. A handler that noted the subject it
    wrote (``event.notes["subject"]``) saves the hooks reading it again."""
    noted = getattr(event, "notes", {}).get("subject")  # an event read outside a handler has none
    if isinstance(noted, EventSubject):
        return noted
    for kind in _KINDS.values():
        if kind.handles(event.type):
            return kind.from_event(event)
    return None


def subject_for_topic(topic: str, held: Any = None) -> EventSubject | None:
    """The subject of a stored topic (``approval.12``) as it is now: cards are built at send time.
    ``held``: the topic's object as the caller has it in hand (its current state), not read again."""
    prefix, _sep, ident = topic.partition(".")
    kind = _KINDS.get(prefix)
    if kind is None or not ident.isdigit():
        return None
    if held is not None and kind.from_object is not None and getattr(held, "pk", None) == int(ident):
        return kind.from_object(held)
    return kind.from_id(int(ident))


def event_data(event: ErpEvent) -> dict[str, Any]:
    return event.data if isinstance(event.data, dict) else {}


def money(value: Any) -> str:
    """``1234.5`` → ``"1,234.50"`` in the reader's grouping; None → ``""``. Rule templates put
    ``{currency}`` beside ``{amount}`` themselves: the number alone."""
    from portal import formatting

    return formatting.number(value, decimals=2) if value is not None else ""


def quantity(value: Any) -> str:
    """A quantity without trailing zeros: ``Decimal("10.000")`` → ``"10"``."""
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
