"""The generic connector's configuration: how to read a document and how to decide on it.

Stored as JSON in ``ConnectorSettings.options`` and checked here, once, when admin saves it (and
again when the connector is built), so a typo is a form error and not a failed writeback at 3 a.m.

Paths into JSON answers are dotted (``data.requester.login``); a number indexes a list
(``lines.0.code``); ``[]`` maps over a list (``approvers[].login`` → every approver's login).
Templates use ``{id}`` (URLs) and ``{id}``, ``{outcome}``, ``{actor}``, ``{comment}``,
``{idempotency_key}`` (decide body); nothing else is substituted.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

PATH = re.compile(r"^[A-Za-z0-9_\-]+(\[\])?(\.[A-Za-z0-9_\-]+(\[\])?)*$")
URL_PLACEHOLDERS = {"id"}
BODY_PLACEHOLDERS = {"id", "outcome", "actor", "comment", "idempotency_key"}
SNAPSHOT_FIELDS = {"id", "kind", "title", "amount", "currency", "requester", "project", "state", "approvers",
                   "decided_by", "decided_at"}
LINE_FIELDS = {"sku", "name", "qty", "unit_price"}
STATES = ("pending", "approved", "rejected", "cancelled")
METHODS = {"GET", "POST", "PUT", "PATCH"}
RESULT_FIELDS = {"decided_by", "decided_at", "reference", "replayed"}


@dataclass(frozen=True)
class ReadCall:
    url: str
    fields: dict[str, str]
    states: dict[str, tuple[str, ...]]
    root: str = ""
    lines: dict[str, str] = field(default_factory=dict)
    not_found_status: tuple[int, ...] = (404,)


@dataclass(frozen=True)
class DecideCall:
    method: str
    url: str
    body: Any
    outcomes: dict[str, str]
    idempotency_header: str = "Idempotency-Key"
    success_status: tuple[int, ...] = (200, 201, 202, 204)
    conflict_status: tuple[int, ...] = (409,)
    result: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GenericConfig:
    read: ReadCall
    decide: DecideCall
    kind: str = "document"
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    test_document: str = ""


def resolve(data: Any, path: str) -> Any:
    """The value at ``path`` in ``data`` (None when any step is missing)."""
    if not path:
        return data
    head, _dot, rest = path.partition(".")
    if head.endswith("[]"):
        items = resolve_step(data, head[:-2])
        return [resolve(item, rest) for item in items] if isinstance(items, list) else None
    return resolve(resolve_step(data, head), rest) if rest else resolve_step(data, head)


def resolve_step(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        return data.get(key)
    if isinstance(data, list) and key.isdigit() and int(key) < len(data):
        return data[int(key)]
    return None


def placeholders(template: str) -> set[str]:
    return {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}


def render(template: Any, values: dict[str, str]) -> Any:
    """``template`` (JSON) with every string's placeholders filled in."""
    if isinstance(template, str):
        return template.format_map(values)
    if isinstance(template, list):
        return [render(item, values) for item in template]
    if isinstance(template, dict):
        return {key: render(item, values) for key, item in template.items()}
    return template


def _strings(template: Any) -> list[str]:
    if isinstance(template, str):
        return [template]
    if isinstance(template, list):
        return [s for item in template for s in _strings(item)]
    if isinstance(template, dict):
        return [s for item in template.values() for s in _strings(item)]
    return []


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def obj(self, value: Any, where: str, *, required: bool = True) -> dict[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.fail(_("“%(where)s” must be a JSON object.") % {"where": where})
            return {}
        return value

    def text(self, value: Any, where: str, *, required: bool = True, default: str = "") -> str:
        if value is None and not required:
            return default
        if not isinstance(value, str) or (required and not value):
            self.fail(_("“%(where)s” must be a non-empty string.") % {"where": where})
            return default
        return value

    def path(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        if text and not PATH.match(text):
            self.fail(_("“%(where)s”: “%(path)s” is not a path like data.items[].code.")
                      % {"where": where, "path": text})
        return text

    def template(self, value: str, where: str, allowed: set[str]) -> None:
        try:
            names = placeholders(value)
        except ValueError as exc:
            self.fail(_("“%(where)s”: %(error)s.") % {"where": where, "error": exc})
            return
        unknown = names - allowed
        if unknown:
            self.fail(_("“%(where)s” uses %(unknown)s; allowed: %(allowed)s.") % {
                "where": where, "unknown": ", ".join("{" + n + "}" for n in sorted(unknown)),
                "allowed": ", ".join("{" + n + "}" for n in sorted(allowed))})

    def url(self, value: Any, where: str) -> str:
        text = self.text(value, where)
        # Relative only: the credentials must never travel to a host the URL template could name.
        if text and not text.startswith("/"):
            self.fail(_("“%(where)s” must be a path starting with “/” (the base URL is prepended).") % {"where": where})
        self.template(text, where, URL_PLACEHOLDERS)
        return text

    def statuses(self, value: Any, where: str, default: tuple[int, ...]) -> tuple[int, ...]:
        if value is None:
            return default
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and 100 <= v <= 599 for v in value):
            self.fail(_("“%(where)s” must be a list of HTTP status codes.") % {"where": where})
            return default
        return tuple(value)

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, str]:
        raw = self.obj(value, where)
        unknown = set(raw) - allowed
        if unknown:
            self.fail(_("“%(where)s” has unknown keys %(unknown)s; allowed: %(allowed)s.") % {
                "where": where, "unknown": ", ".join(sorted(unknown)), "allowed": ", ".join(sorted(allowed))})
        return {key: self.path(path, f"{where}.{key}") for key, path in raw.items() if key in allowed}


def parse_config(raw: Any) -> GenericConfig:
    """The checked configuration, or ValueError listing every problem (one per line)."""
    check = _Checker()
    root = check.obj(raw, "options")
    unknown = set(root) - {"read", "decide", "kind", "auth_header", "auth_prefix", "test_document"}
    if unknown:
        check.fail(_("Unknown keys: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))})

    read = check.obj(root.get("read"), "read")
    fields = check.mapping(read.get("fields"), "read.fields", SNAPSHOT_FIELDS)
    if read and "state" not in fields:
        check.fail(_("“read.fields” must map “state”."))
    states_raw = check.obj(read.get("states"), "read.states")
    states: dict[str, tuple[str, ...]] = {}
    for name, values in states_raw.items():
        if name not in STATES:
            check.fail(_("“read.states” has unknown state “%(name)s” (use %(states)s).")
                       % {"name": name, "states": ", ".join(STATES)})
        elif not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
            check.fail(_("“read.states.%(name)s” must be a list of the ERP's values.") % {"name": name})
        else:
            states[name] = tuple(str(v) for v in values)
    if states_raw and "pending" not in states:
        check.fail(_("“read.states” must say which values mean “pending”."))
    lines_raw = check.obj(read.get("lines"), "read.lines", required=False)
    lines = {}
    if lines_raw:
        lines = {"path": check.path(lines_raw.get("path"), "read.lines.path"),
                 **check.mapping({k: v for k, v in lines_raw.items() if k != "path"}, "read.lines", LINE_FIELDS)}
    read_call = ReadCall(
        url=check.url(read.get("url"), "read.url"), fields=fields, states=states,
        root=check.path(read["root"], "read.root") if read.get("root") else "", lines=lines,
        not_found_status=check.statuses(read.get("not_found_status"), "read.not_found_status", (404,)),
    )

    decide = check.obj(root.get("decide"), "decide")
    method = check.text(decide.get("method"), "decide.method", required=False, default="POST").upper()
    if method not in METHODS:
        check.fail(_("“decide.method” must be one of %(methods)s.") % {"methods": ", ".join(sorted(METHODS))})
    body = decide.get("body", {})
    for text in _strings(body):
        check.template(text, "decide.body", BODY_PLACEHOLDERS)
    outcomes = check.obj(decide.get("outcomes"), "decide.outcomes", required=False) or {
        "approved": "approved", "rejected": "rejected"}
    if set(outcomes) != {"approved", "rejected"} or not all(isinstance(v, str) and v for v in outcomes.values()):
        check.fail(_("“decide.outcomes” must give the ERP's word for “approved” and for “rejected”."))
    decide_call = DecideCall(
        method=method, url=check.url(decide.get("url"), "decide.url"), body=body, outcomes=dict(outcomes),
        idempotency_header=check.text(decide.get("idempotency_header"), "decide.idempotency_header",
                                      required=False, default="Idempotency-Key"),
        success_status=check.statuses(decide.get("success_status"), "decide.success_status", (200, 201, 202, 204)),
        conflict_status=check.statuses(decide.get("conflict_status"), "decide.conflict_status", (409,)),
        result=check.mapping(decide.get("result"), "decide.result", RESULT_FIELDS) if decide.get("result") else {},
    )
    config = GenericConfig(
        read=read_call, decide=decide_call,
        kind=check.text(root.get("kind"), "kind", required=False, default="document"),
        auth_header=check.text(root.get("auth_header"), "auth_header", required=False, default="Authorization"),
        auth_prefix=root.get("auth_prefix", "Bearer ") if isinstance(root.get("auth_prefix", ""), str) else "",
        test_document=check.text(root.get("test_document"), "test_document", required=False),
    )
    if check.errors:
        raise ValueError("\n".join(check.errors))
    return config
