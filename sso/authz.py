"""The only two ways the portal asks about permissions: ``authorize()`` and ``restrict()``.

Pages, API, websocket subscriptions, card buttons, the bot and IM routing all call these. An action
is answered by the admin-edited rules (``sso.permissions``); an app that needs more (a decision must
also come from a named approver, on a pending document) registers a ``Policy`` for it, which still
asks the rules. Delegation is handled here, once, for every action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    chain: tuple[str, ...] = ()
    acting_for: Any = None  # the delegator, when allowed through a delegation

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class Policy:
    """``check`` and ``restrict`` answer for a user acting in their own name. ``forbids`` names what
    the person actually acting may never do, delegation or not (separation of duties)."""

    check: Callable[[Any, Any], Verdict]
    restrict: Callable[[QuerySet, Any], QuerySet]
    forbids: Callable[[Any, Any], str | None] | None = None


_policies: dict[str, Policy] = {}


def register_policy(action: str, policy: Policy) -> None:
    _policies[action] = policy


def _signed_in(user: Any) -> bool:
    return user is not None and not isinstance(user, AnonymousUser) and user.is_authenticated and user.is_active


def _own_verdict(user: Any, action: str, obj: Any) -> Verdict:
    policy = _policies.get(action)
    if policy is not None:
        # The person whose rules are used may not do what the policy forbids them either: a delegate
        # does not decide the delegator's own request (``restrict()`` already said so).
        refusal = policy.forbids(user, obj) if policy.forbids is not None else None
        if refusal:
            return Verdict(False, refusal, (refusal,))
        return policy.check(user, obj)
    from sso.permissions import ACTIONS, grant

    if action not in ACTIONS:
        return Verdict(False, _("no rule grants %(action)s") % {"action": action})
    granted = grant(user, action, obj)
    reason = granted.chain[-1] if granted.chain else ""
    return Verdict(granted.allowed, reason, granted.chain)


def authorize(user: Any, action: str, obj: Any = None) -> Verdict:
    """May ``user`` do ``action`` (on ``obj``)? Unknown actions and anonymous users are refused."""
    from sso.snapshot import pinned

    with pinned():  # one read of the permission stamp for the whole check
        return _authorize(user, action, obj)


def _authorize(user: Any, action: str, obj: Any = None) -> Verdict:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return Verdict(False, _("not signed in"))
    if not user.is_active:
        return Verdict(False, _("account disabled"))
    policy = _policies.get(action)
    if policy is not None and policy.forbids is not None:
        refusal = policy.forbids(user, obj)
        if refusal:
            return Verdict(False, refusal, (refusal,))
    own = _own_verdict(user, action, obj)
    if own.allowed:
        return own
    from sso.permissions import active_delegations

    chain = list(own.chain) or [own.reason]
    for delegation in active_delegations(user, action):
        delegator = delegation.delegator
        theirs = _own_verdict(delegator, action, obj)
        note = _("as delegate of %(name)s until %(until)s") % {"name": delegator, "until": delegation.ends_at}
        if theirs.allowed:
            return Verdict(True, theirs.reason, (*chain, note, *theirs.chain), acting_for=delegator)
        chain.extend([note, *theirs.chain])
    return Verdict(False, own.reason, tuple(chain))


def restrict(queryset: QuerySet, user: Any, action: str) -> QuerySet:
    """``queryset`` narrowed to the objects ``user`` may ``action`` (in their name or a delegator's)."""
    from sso.snapshot import pinned

    with pinned():  # one read of the permission stamp for the whole check
        return _restrict(queryset, user, action)


def _restrict(queryset: QuerySet, user: Any, action: str) -> QuerySet:
    if not _signed_in(user):
        return queryset.none()
    from sso.permissions import ACTIONS, active_delegations, granted_queryset

    policy = _policies.get(action)
    if policy is None and action not in ACTIONS:
        return queryset.none()

    def own(person: Any) -> QuerySet:
        return policy.restrict(queryset, person) if policy is not None else granted_queryset(queryset, person, action)

    result = own(user)
    delegated = [own(d.delegator) for d in active_delegations(user, action)]
    if delegated:
        pks = set(result.values_list("pk", flat=True))
        for qs in delegated:
            pks.update(qs.values_list("pk", flat=True))
        result = queryset.filter(pk__in=pks)
        if policy is not None and policy.forbids is not None:
            result = queryset.filter(pk__in=[o.pk for o in result if not policy.forbids(user, o)])
    return result


# Up to this many (user, object) pairs, authorize_many() asks authorize() pair by pair. With who is
# who kept per process (sso.snapshot) and the objects' own reads done by the caller (approvals.cards
# prefetches the approvers), a pair costs no query, and building restrict()'s statement costs about
# as much as 20–30 pairs (bench/worker_profile.py, batches of 6: build cards 2.3 → 0.95 ms CPU per
# card; batches of 20 the same either way).
PAIRWISE_UP_TO = 24


def authorize_many(users: Iterable[Any], action: str, objects: Iterable[Model], *,
                   asked: Iterable[tuple[Any, Model]] | None = None) -> set[tuple[int, int]]:
    """The ``(user pk, object pk)`` pairs of ``users`` × ``objects`` that ``authorize()`` allows, decided
    set-based: ``restrict()`` of each user over the objects, as one EXISTS per user, in one statement
    per model (a batch of cards asks this once instead of ``authorize()`` once per card). The verdict
    is ``authorize()``'s, pair by pair (``sso/tests/test_authorize_many.py``); use ``read_once`` around
    it for a constant number of queries whatever the number of users. Up to ``PAIRWISE_UP_TO`` pairs it
    is ``authorize()`` itself, pair by pair (cheaper than building the statement for so few).

    ``asked``: the (user, object) pairs the caller needs (a batch of cards: each recipient with their own
    document, not every recipient with every document). Up to ``PAIRWISE_UP_TO`` of them they alone are
    decided, pair by pair; the answer then holds only those of them that are allowed."""
    people = [user for user in dict.fromkeys(users) if _signed_in(user)]
    by_model: dict[type, list[Any]] = {}
    for obj in objects:
        by_model.setdefault(type(obj), []).append(obj)
    if len(by_model) > 1:  # the pairs name no model: two models' pks would be taken for each other
        raise ValueError("authorize_many() decides the objects of one model at a time")
    allowed: set[tuple[int, int]] = set()
    if not people:
        return allowed
    from sso.snapshot import pinned

    with pinned():
        objects_ = [obj for objs in by_model.values() for obj in objs]
        if asked is not None:
            wanted = {(user.pk, obj.pk): (user, obj) for user, obj in asked if _signed_in(user)}
            if len(wanted) <= PAIRWISE_UP_TO:
                # A batch of 5 cards to 5 people is 5 pairs, not the 25 of every person × every document.
                return {pair for pair, (user, obj) in wanted.items() if authorize(user, action, obj)}
        if len(people) * len(objects_) <= PAIRWISE_UP_TO:
            # A quiet system's batch (one card, one approver): authorize() itself, pair by pair, reads
            # who is who from sso.snapshot and costs no query for it, where restrict()'s EXISTS statement
            # cost about 4 ms of Django's query building per action.
            return {(user.pk, obj.pk) for user in people for obj in objects_ if authorize(user, action, obj)}
        for model, objs in by_model.items():
            pks = [obj.pk for obj in objs]
            scope = model._default_manager.filter(pk__in=pks)
            may = {f"may_{i}": Exists(restrict(scope, user, action).filter(pk=OuterRef("pk")))
                   for i, user in enumerate(people)}
            for pk, *verdicts in scope.annotate(**may).values_list("pk", *may):
                allowed.update((user.pk, pk) for user, verdict in zip(people, verdicts, strict=True) if verdict)
    return allowed
