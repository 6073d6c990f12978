"""Who may subscribe to which live topic. Each app registers a check for its topic kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sso.authz import Verdict

TopicCheck = Callable[[Any, str], Verdict]
_checks: dict[str, TopicCheck] = {}


def register_topic(kind: str, check: TopicCheck) -> None:
    _checks[kind] = check


def may_subscribe(user: Any, topic: str) -> Verdict:
    kind, _, ident = topic.partition(".")
    check = _checks.get(kind)
    if check is None or not ident:
        return Verdict(False, "unknown topic")
    return check(user, ident)
