"""The intake's compiled schemas (erp.events.validate): whatever the fast validator accepts, jsonschema
accepts too, so it can only save time, never let through what jsonschema refuses."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from erp import events
from erp.events import EVENT_SCHEMAS, EventDataError, validate
from tests.conftest import approval_requested

# Strings where Python's \d, \s, \w and $ and an ECMA regex's may disagree, dates and times at the
# edges of their formats, and values the Rust side cannot read.
TRICKY_STRINGS = [
    "12", " 12 ", "12.50", "-3", "\ufeff12", "12\ufeff", "\u00a012", "\u300012", "\x1c12", "12\n", "12\n\n",
    "\u0663", "１２", "12\u2028", "", " ", "2026-06-30", "2026-02-30", "2026-6-30", "٢٠٢٦-٠٦-٣٠",
    "2026-06-30T10:00:00+08:00", "2026-06-30T10:00:00", "2026-06-30 10:00:00Z", "2026-06-30T23:59:60Z",
    "SKU-123", "li.si", "\ud800", "a" * 300,
]
TRICKY_VALUES = [*TRICKY_STRINGS, 0, -1, 1.5, 1e308, 10**30, True, None, [], {}]


def paths(node, path=()):
    """Every place in an example payload a value can be put."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*path, key))
    elif isinstance(node, list) and node:
        yield from paths(node[0], (*path, 0))


def replaced(data, path, value):
    data = copy.deepcopy(data)
    if not path:
        return value
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return data


def test_every_registered_type_has_a_fast_validator():
    assert EVENT_SCHEMAS
    for event_type in EVENT_SCHEMAS:
        _slow, fast = events._compile(EVENT_SCHEMAS[event_type])
        assert fast is not None, f"{event_type}: its schema did not compile, every event is slow"


def test_the_fast_validator_never_accepts_what_jsonschema_refuses():
    schema = EVENT_SCHEMAS["erp.approval.requested"]
    slow = Draft202012Validator(schema, format_checker=FormatChecker())
    _slow, fast = events._compile(schema)
    example = approval_requested()
    assert fast.is_valid(example) and slow.is_valid(example)
    tried = refused_by_both = 0
    for path in paths(example):
        for value in TRICKY_VALUES:
            data = replaced(example, path, value)
            try:
                fast_says = fast.is_valid(data)
            except (ValueError, TypeError, OverflowError):
                fast_says = False  # validate() then asks jsonschema
            slow_says = slow.is_valid(data)
            tried += 1
            assert not (fast_says and not slow_says), f"fast accepted {value!r} at {path}; jsonschema refuses it"
            refused_by_both += not fast_says and not slow_says
    assert tried > 500 and refused_by_both > 100


def test_patterns_are_made_ascii_and_unsure_ones_keep_jsonschema_alone():
    strict = events._strict_patterns({"properties": {"a": {"pattern": r"^\s*-?\d+\w?$"}},
                                      "enum": [{"pattern": r"\d"}]})
    assert strict["properties"]["a"]["pattern"] == r"^[ \t\n\r\f\v]*-?[0-9]+[A-Za-z0-9_]?$"
    assert strict["enum"] == [{"pattern": r"\d"}]  # a value, not a schema: left alone
    for unsure in (r"^\S+$", r"[\d.]+", r"\bword", r"a\\d"):
        assert events._strict_patterns({"pattern": unsure}) is None, unsure


def test_the_verdict_and_message_are_jsonschemas():
    data = approval_requested(amount="\ufeff12")  # the ECMA \s would accept it; Python's refuses
    with pytest.raises(EventDataError, match=r"^data\.document\.amount: "):
        validate("erp.approval.requested", data)
    validate("erp.approval.requested", approval_requested(amount=" 12.50 "))
