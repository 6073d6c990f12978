"""The only two ways the portal asks about permissions: ``authorize()`` and ``restrict()``.

Pages, API, websocket subscriptions, card buttons, the bot and IM routing all call these. Each
action's rule is registered once (by the app that owns the object) and answers both questions, so a
list never shows what a detail page would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Policy:
    check: Callable[[Any, Any], Verdict]
    restrict: Callable[[QuerySet, Any], QuerySet]


_policies: dict[str, Policy] = {}


def register_policy(action: str, policy: Policy) -> None:
    _policies[action] = policy


def authorize(user: Any, action: str, obj: Any = None) -> Verdict:
    """May ``user`` do ``action`` (on ``obj``)? Unknown actions and anonymous users are refused."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return Verdict(False, "not signed in")
    if not user.is_active:
        return Verdict(False, "account disabled")
    policy = _policies.get(action)
    if policy is None:
        return Verdict(False, f"no rule grants {action}")
    return policy.check(user, obj)


def restrict(queryset: QuerySet, user: Any, action: str) -> QuerySet:
    """``queryset`` narrowed to the objects ``user`` may ``action``."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return queryset.none()
    policy = _policies.get(action)
    if policy is None:
        return queryset.none()
    return policy.restrict(queryset, user)
