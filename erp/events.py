"""Internal event bus: apps register a handler per ERP event type (in AppConfig.ready).

The erp app knows nothing about approvals, inventory or IM; they subscribe here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from erp.models import Connector


@dataclass(frozen=True)
class ErpEvent:
    connector: Connector
    id: str
    type: str
    source: str
    subject: str
    data: dict[str, Any]


class EventDataError(ValueError):
    """The event's ``data`` does not match its type's schema; the intake answers 400."""


Handler = Callable[[ErpEvent], None]
_handlers: dict[str, Handler] = {}
# JSON Schema (as published at /api/events/) per event type, registered with its handler.
EVENT_SCHEMAS: dict[str, dict[str, Any]] = {}


def register(event_type: str, handler: Handler, schema: dict[str, Any]) -> None:
    """``handler`` mirrors events of ``event_type`` whose ``data`` ``schema`` accepts: the intake
    validates against the schema before any handler runs (bad data is a 400 that writes nothing)."""
    _handlers[event_type] = handler
    EVENT_SCHEMAS[event_type] = schema


_validators: dict[str, tuple[dict[str, Any], Any]] = {}


def validate(event_type: str, data: Any) -> None:
    """Raise ``EventDataError`` naming the first place where ``data`` breaks its type's published schema."""
    from jsonschema import Draft202012Validator, FormatChecker

    schema = EVENT_SCHEMAS.get(event_type)
    if schema is None:
        return
    cached = _validators.get(event_type)
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema, format_checker=FormatChecker()))
        _validators[event_type] = cached
    error = next(iter(sorted(cached[1].iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise EventDataError(f"data{where}: {error.message}")


# Run after the type's own handler, in the same transaction (notification rules): they see the
# mirror the handler just wrote, and are rolled back with it.
_post_hooks: list[Handler] = []


def register_post_hook(hook: Handler) -> None:
    if hook not in _post_hooks:
        _post_hooks.append(hook)


def run_post_hooks(event: ErpEvent) -> None:
    for hook in list(_post_hooks):
        hook(event)


def handler_for(event_type: str) -> Handler | None:
    handler = _handlers.get(event_type)
    if handler is None or not _post_hooks:
        return handler

    def handle_then_hooks(event: ErpEvent) -> None:
        handler(event)
        run_post_hooks(event)

    return handle_then_hooks
