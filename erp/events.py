"""Internal event bus: apps register a handler per ERP event type (in AppConfig.ready).

The erp app knows nothing about approvals, inventory or IM; they subscribe here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
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
    # What the type's handler leaves for the post-hooks of this same event, so that they need not read
    # it again (``erp.subjects.subject_of`` takes the "subject" the handler wrote). Lives and dies with
    # the event, inside its savepoint.
    notes: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


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


# Per event type: (its schema, jsonschema's validator, the compiled one or None), built once per schema.
_validators: dict[str, tuple[dict[str, Any], Any, Any]] = {}


def validate(event_type: str, data: Any) -> None:
    """Raise ``EventDataError`` naming the first place where ``data`` breaks its type's published schema.

    jsonschema decides, as always; the schema compiled by jsonschema-rs only answers "valid" quickly
    (about 1 µs against 170 µs at the intake). It is made at least as strict as jsonschema: formats are
    checked, and its patterns match ASCII digits, letters and spaces only (``_strict_patterns``), so
    whatever it accepts jsonschema accepts too (erp/tests/test_fast_schema.py holds that). Anything it
    refuses, or cannot read, goes to jsonschema for the verdict and the message."""
    schema = EVENT_SCHEMAS.get(event_type)
    if schema is None:
        return
    _schema, slow, fast = _validator(event_type, schema)
    if fast is not None:
        try:
            if fast.is_valid(data):
                return
        except (ValueError, TypeError, OverflowError):  # a value it cannot convert: jsonschema decides
            pass
    error = next(iter(sorted(slow.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise EventDataError(f"data{where}: {error.message}")


def compile_validators() -> None:
    """Compile every published schema now (at process start, ``portal.warmup``), not on the first event
    of each type: importing and compiling jsonschema made that event's answer about 100 ms slower."""
    for event_type, schema in list(EVENT_SCHEMAS.items()):
        _validator(event_type, schema)


def _validator(event_type: str, schema: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
    """(schema, jsonschema's validator, the fast one or None), compiled once per schema object."""
    cached = _validators.get(event_type)
    if cached is None or cached[0] is not schema:
        cached = _validators[event_type] = (schema, *_compile(schema))
    return cached


def _compile(schema: dict[str, Any]) -> tuple[Any, Any]:
    from jsonschema import Draft202012Validator, FormatChecker

    slow = Draft202012Validator(schema, format_checker=FormatChecker())
    strict = _strict_patterns(schema)
    fast = None
    if strict is not None:
        try:
            import jsonschema_rs

            fast = jsonschema_rs.Draft202012Validator(strict, validate_formats=True)
        except Exception:  # a schema it cannot compile: jsonschema alone, as before
            fast = None
    return slow, fast


# Python's \d, \s and \w match Unicode digits, spaces and letters; an ECMA regex's may match other
# ones (its \s matches U+FEFF, Python's does not). Their ASCII parts match the same in both.
_ASCII_CLASSES = {"\\d": "[0-9]", "\\s": "[ \\t\\n\\r\\f\\v]", "\\w": "[A-Za-z0-9_]"}
_UNSURE_PATTERN = re.compile(r"\\\\|\\[DSWbB]|\[[^\]]*\\[dsw]")  # \\, negated classes, classes in classes
_NOT_SCHEMAS = {"const", "enum", "default", "examples"}


def _strict_patterns(node: Any) -> Any:
    """``node`` with every pattern's \\d, \\s and \\w made ASCII (stricter than jsonschema's), or None
    when a pattern holds something this cannot make stricter for sure."""
    if isinstance(node, list):
        items = [_strict_patterns(item) for item in node]
        return None if any(item is None for item in items) else items
    if not isinstance(node, dict):
        return node
    strict: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NOT_SCHEMAS:
            strict[key] = value
            continue
        if key == "pattern" and isinstance(value, str):
            value = _ascii_pattern(value)
        elif key == "patternProperties" and isinstance(value, dict):
            value = {_ascii_pattern(k): v for k, v in value.items()}
            if None in value:
                return None
        value = _strict_patterns(value)
        if value is None:
            return None
        strict[key] = value
    return strict


def _ascii_pattern(pattern: str) -> str | None:
    if _UNSURE_PATTERN.search(pattern):
        return None
    for escape, ascii_class in _ASCII_CLASSES.items():
        pattern = pattern.replace(escape, ascii_class)
    return pattern


# Run after the type's own handler, in the same transaction (notification rules): they see the
# mirror the handler just wrote, and are rolled back with it.
_post_hooks: list[Handler] = []


def register_post_hook(hook: Handler) -> None:
    if hook not in _post_hooks:
        _post_hooks.append(hook)


def run_post_hooks(event: ErpEvent) -> None:
    for hook in list(_post_hooks):
        hook(event)


# Set-based handlers, per event type (optional, beside the one-by-one handler): given a worker's run of
# stored events of that type, ``handle_many(events)`` writes the mirror of a leading part of them together
# and returns how many it handled, or minus how many leading events are for the one-by-one handler
# (which handles them before the set-based one is asked about the rest again). It writes exactly
# what the one-by-one handler would for those events, in their order; ``erp.handling`` runs their
# post-hooks, and falls back to the one-by-one handler when it raises.
ManyHandler = Callable[[list[ErpEvent]], int]
_many_handlers: dict[str, ManyHandler] = {}


def register_many(event_type: str, handle_many: ManyHandler) -> None:
    _many_handlers[event_type] = handle_many


def many_handler_for(event_type: str) -> ManyHandler | None:
    return _many_handlers.get(event_type)


def handler_for(event_type: str) -> Handler | None:
    handler = _handlers.get(event_type)
    if handler is None or not _post_hooks:
        return handler

    def handle_then_hooks(event: ErpEvent) -> None:
        handler(event)
        run_post_hooks(event)

    return handle_then_hooks
