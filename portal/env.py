"""Strict readers of environment variables for the settings.

A value that cannot mean what the variable asks for stops the process at start with the variable's
name and what was expected, instead of being read as a default (``DEBUG=ture`` used to mean False).
An unset or empty variable means its default.
"""

import json
import os
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str = "") -> str:
    """The variable as text (surrounding white space removed), or the default when unset or empty."""
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case; anything else is a configuration error."""
    value = _raw(name)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: use one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}"
    )


def _bounded(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} is below its minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value!r} is above its maximum {maximum}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (optionally within bounds); anything else is a configuration error."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    _bounded(name, number, minimum, maximum)
    return number


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """A number (optionally within bounds); anything else, or nan/inf, is a configuration error."""
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    _bounded(name, number, minimum, maximum)
    return number


def env_list(name: str, default: str | Iterable[str] = "", *, choices: Iterable[str] | None = None) -> list[str]:
    """Comma-separated items (blank items dropped); with ``choices``, an unknown item is an error.

    Unlike the other readers, a variable set to the empty string is an empty list, not the default:
    ``IM_ADAPTERS=`` switches every adapter off.
    """
    value = os.environ.get(name)
    if value is None:
        value = default if isinstance(default, str) else ",".join(default)
    items = [part.strip() for part in value.split(",") if part.strip()]
    if choices is not None:
        allowed = list(choices)
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise ImproperlyConfigured(
                f"{name}: unknown {', '.join(map(repr, unknown))}; expected items of {', '.join(allowed)}"
            )
    return items


def env_choice(name: str, default: str, choices: Iterable[str]) -> str:
    """One of ``choices``; anything else is a configuration error naming them."""
    allowed = list(choices)
    value = env_str(name, default)
    if value not in allowed:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def env_json_object(name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object; malformed JSON or another JSON type is a configuration error."""
    value = _raw(name)
    if value is None:
        return dict(default or {})
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, got {type(parsed).__name__}")
    return parsed
