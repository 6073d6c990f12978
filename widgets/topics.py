"""Who may subscribe to which live topic. Each app registers a check for its topic kind."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sso.authz import Verdict


def scope_topic(kind: str, scope: str, name: str) -> str:
    """Topic idents must be short ASCII; customer and project names are neither."""
    digest = hashlib.sha1(f"{scope}:{name}".encode()).hexdigest()[:16]  # noqa: S324 - a name, not a secret
    return f"{kind}.{scope}-{digest}"


def version_of(moment) -> int:
    """A topic version for aggregates (an item in all warehouses, a customer's receivables): the
    newest change, in milliseconds. Increases with every change, as a document's version does."""
    return int(moment.timestamp() * 1000) if moment else 0


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
