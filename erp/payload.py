"""One way to read an ERP event's ``data``: typed, with the path of what is wrong in every error.

In the spirit of Zulip's ``WildValue``: the payload is wrapped, walked by key, and each leaf is
"tamed" with a check that either returns a Python value of the right type or raises
``EventDataError`` (the intake answers 400)::

    doc = read(event.data)["document"]
    amount = doc["amount"].tame(decimal_for(ApprovalDocument, "amount"))
    title = doc["title"].tame(text(max_length=300))

The JSON Schema fragments at the end describe the same rules for the published schemas
(``/api/events/``), which the intake validates before any handler runs (``erp.events.validate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.utils.dateparse import parse_date

from erp.events import EventDataError

T = TypeVar("T")
Check = Callable[["Wild"], T]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Wild:
    """A value of an ERP payload not yet checked, and where it sits (``document.lines[1].qty``)."""

    __slots__ = ("path", "value")

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path

    def error(self, what: str) -> EventDataError:
        return EventDataError(f"{self.path} {what}")

    @property
    def missing(self) -> bool:
        """Absent, null or (for text) empty: what an optional field may be."""
        return self.value is MISSING or self.value is None or (isinstance(self.value, str) and not self.value.strip())

    def __getitem__(self, key: str) -> Wild:
        mapping = self.object()
        return Wild(mapping.get(key, MISSING), f"{self.path}.{key}")

    def object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise self.error("must be an object")
        return self.value

    def items(self) -> Iterator[Wild]:
        """The elements of an array (an absent array is empty)."""
        if self.value is MISSING or self.value is None:
            return iter(())
        if not isinstance(self.value, list):
            raise self.error("must be an array")
        return (Wild(item, f"{self.path}[{index}]") for index, item in enumerate(self.value))

    def tame(self, check: Check[T]) -> T:
        return check(self)


def read(data: Any, path: str = "data") -> Wild:
    """Wrap an event's ``data`` for typed reading."""
    return Wild(data, path)


# --- checks -------------------------------------------------------------------------------------


def text(*, max_length: int = 300, required: bool = True, default: str = "") -> Check[str]:
    """A string (a whole number is taken as its digits: ERPs send ids both ways), stripped; an absent
    or empty one is an error when required, else ``default``."""

    def check(value: Wild) -> str:
        if value.missing:
            if required:
                raise value.error("is required")
            return default
        raw = value.value
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise value.error("must be a string")
        result = str(raw).strip()
        if len(result) > max_length:
            raise value.error(f"is longer than {max_length} characters")
        return result

    return check


def decimal(*, max_digits: int, decimal_places: int, default: Decimal | None = None) -> Check[Decimal]:
    """A decimal string such as ``"12800.00"`` (or a JSON number) that fits a column of ``max_digits``
    digits with ``decimal_places`` after the point; absent is an error unless there is a default."""
    limit = Decimal(10) ** (max_digits - decimal_places)

    def check(value: Wild) -> Decimal:
        if value.missing and default is not None:
            return default
        raw = value.value
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise value.error('must be a decimal string such as "12800.00"')
        try:
            result = Decimal(str(raw).strip())
        except InvalidOperation:
            raise value.error(f"is not a number: {raw!r}") from None
        if not result.is_finite() or abs(result) >= limit:
            raise value.error("is out of range")
        return result

    return check


def decimal_for(model: Any, field_name: str, *, default: Decimal | None = None) -> Check[Decimal]:
    """A decimal that fits the model's column: the limit comes from the field, never a second constant."""
    field = model._meta.get_field(field_name)
    return decimal(max_digits=field.max_digits, decimal_places=field.decimal_places, default=default)


def date(*, required: bool = True) -> Check[dt.date | None]:
    """A date, ``YYYY-MM-DD``; absent is None unless required."""

    def check(value: Wild) -> dt.date | None:
        raw = value.tame(text(max_length=10, required=required))
        if not raw:
            return None
        try:
            result = parse_date(raw)
        except ValueError:
            result = None
        if result is None:
            raise value.error("must be a date, YYYY-MM-DD")
        return result

    return check


def boolean(*, default: bool = False) -> Check[bool]:
    def check(value: Wild) -> bool:
        if value.value is MISSING or value.value is None:
            return default
        if not isinstance(value.value, bool):
            raise value.error("must be true or false")
        return value.value

    return check


def integer(*, minimum: int, maximum: int, default: int | None = None) -> Check[int]:
    def check(value: Wild) -> int:
        if (value.value is MISSING or value.value is None) and default is not None:
            return default
        if isinstance(value.value, bool) or not isinstance(value.value, int):
            raise value.error("must be a whole number")
        if not minimum <= value.value <= maximum:
            raise value.error(f"must be from {minimum} to {maximum}")
        return value.value

    return check


# --- the same rules as JSON Schema fragments, for the published schemas ----------------------------


def schema_text(max_length: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": ["string", "integer"], **({"maxLength": max_length} if max_length else {}), **extra}


DECIMAL_SCHEMA: dict[str, Any] = {
    "type": ["string", "number"], "pattern": r"^\s*-?\d+(\.\d+)?\s*$", "examples": ["12800.00"],
}
DATE_SCHEMA: dict[str, Any] = {"type": "string", "format": "date", "examples": ["2026-06-30"]}


# --- Writing amounts the way they are read ------------------------------------------------------------
# Connectors that build events themselves (the demo ERP, the Tryton poller) write amounts with these.


def money(value: Decimal) -> str:
    """Amounts travel as strings with two decimals ("12800.00"): no float rounding on the way."""
    return format(Decimal(value).quantize(Decimal("0.01")), "f")


def quantity(value: Decimal) -> str:
    """Quantities travel as strings without trailing zeros ("4", "2.5")."""
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
