"""What the bot can answer, filled by the domain apps in their ``AppConfig.ready()``: the bot knows the
language (intents, entity kinds, periods) and no domain. Each app registers

- its intents (``register_intent``): how to find the rows for the asker, who else may see each row, how
  to render them, and for a decision how to confirm it;
- the names it knows (``register_names``): where the vocabulary's customers, projects, items and
  warehouses come from, and whether an asker may see a name;
- its reference numbers (``register_reference``): "0042" → the one document the asker may see;
- its examples for "help", and its clarifying question for a decision that names nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model


class ActionRefused(Exception):
    """A confirm button that cannot act now (``message`` tells why); the card keeps its buttons."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Intent:
    name: str
    rows: Callable[[Any, dict, Any], list]  # (asker, entities, Context) → rows the asker may see
    visible: Callable[[Any, list], set]  # (member, rows) → pks of those rows the member may see
    render: Callable[[list, dict, Any], Any]  # (rows, entities, Context) → Answer
    dimensions: frozenset[str]  # entity kinds this intent understands (for follow-ups)
    empty_title: Any = None  # said instead of the names asked about when the asker sees nothing
    personal: bool = False  # a decision: answered to the asker only, never repeated by a follow-up
    remember_as: str = ""  # the intent a follow-up continues ("approve it" → "has it been approved?")
    resolve: Callable[[Any, dict], dict] | None = None  # (asker, entities) → entities, before rows()
    pending_action: Callable[[Any, dict], dict | None] | None = None  # what its confirm button does
    confirm: Callable[[Any, dict, str], str] | None = None  # (actor, pending_action, key) → result


@dataclass(frozen=True)
class Reference:
    kind: str  # the entity it resolves to: "document", "order", "invoice"
    numbers: Callable[[Any], Iterable[str]]  # the asker's numbers of that kind
    intents: tuple[str, ...]  # intents that take it as is
    redirect: str = ""  # any other intent becomes this one ("" keeps it)


_intents: dict[str, Intent] = {}
_references: dict[str, Reference] = {}
_name_sources: dict[str, list[tuple[Model, Callable[[], Iterable[tuple[str, str]]]]]] = {}
_name_checks: dict[str, list[Callable[[Any, str], bool]]] = {}
_examples: list[tuple[int, Any, Any]] = []
_clarifiers: list[Callable[[Any, Any, Any], Any]] = []


def register_intent(intent: Intent) -> None:
    _intents[intent.name] = intent


def intent_named(name: str) -> Intent | None:
    return _intents.get(name)


def register_reference(reference: Reference) -> None:
    _references[reference.kind] = reference


def reference_for(intent: str, ref_kind: str = "") -> Reference | None:
    """The reference kind a bare number means: the one the parser saw, else the intent's own."""
    if ref_kind:
        return _references.get(ref_kind)
    return next((r for r in _references.values() if intent in r.intents), None)


def register_names(kind: str, model: type[Model], rows: Callable[[], Iterable[tuple[str, str]]],
                   may_see: Callable[[Any, str], bool] | None = None) -> None:
    """Names of ``kind`` kept in ``model``'s mirror: ``rows()`` gives (value, display name); ``may_see(user,
    value)`` says whether the asker could get an answer about it (any registered check may say yes)."""
    _name_sources.setdefault(kind, []).append((model, rows))
    if may_see is not None:
        _name_checks.setdefault(kind, []).append(may_see)


def names_of(kind: str) -> list[tuple[str, str]]:
    """Every distinct (value, display name) of ``kind`` across the apps that keep such names, sorted."""
    return sorted({(value, label) for _model, rows in _name_sources.get(kind, []) for value, label in rows()
                   if value})


def name_models() -> list[type[Model]]:
    """The mirrors the vocabulary is built from: it is rebuilt when one of them changes."""
    return list(dict.fromkeys(model for sources in _name_sources.values() for model, _rows in sources))


def may_see_name(user: Any, kind: str, value: str) -> bool:
    return any(check(user, value) for check in _name_checks.get(kind, []))


def register_example(position: int, label: Any, text: Any) -> None:
    """A line of "help": what to ask about, and examples (lazy translated strings)."""
    _examples.append((position, label, text))
    _examples.sort(key=lambda example: example[0])


def examples() -> list[tuple[Any, Any]]:
    return [(label, text) for _position, label, text in _examples]


def register_clarifier(clarify: Callable[[Any, Any, Any], Any]) -> None:
    """``clarify(user, parsed, ctx)`` → an Answer asking which one, or None when it is not about this app."""
    _clarifiers.append(clarify)


def clarifiers() -> list[Callable[[Any, Any, Any], Any]]:
    return list(_clarifiers)
