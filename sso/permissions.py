"""Admin-edited permission rules, evaluated for one object or as a queryset filter.

A rule applies to a user through the user, their groups or their ERP roles; it grants its actions on
the objects that meet all its constraints. Each kind of object says once (``register_constraint_fields``) which
of its fields carry document kind, amount, currency, project, cost center, warehouse, customer and department, and
what "own" means for it. A constraint the object cannot answer refuses (fail closed).

Nothing here is called by views directly: ``sso.authz.authorize``/``restrict`` and the per-action
policies are the only callers.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from sso import snapshot
from sso.models import Delegation, ErpIdentity, PermissionRule

# The actions admins can grant, with what they allow. Apps add theirs with ``register_action``.
ACTIONS: dict[str, str] = {}


def register_action(action: str, label: str) -> None:
    ACTIONS[action] = label


@dataclass(frozen=True)
class ConstraintFields:
    """Where the constraint dimensions live on one model: field paths usable in ``Q`` objects and
    readable from an instance (``a__b`` follows relations)."""

    kind: str | None = None  # the document kind (purchase_requisition, expense_claim…)
    amount: str | None = None
    currency: str | None = None
    project: str | None = None
    cost_center: str | None = None
    warehouse: str | None = None
    customer: str | None = None
    department: str | None = None
    own: Callable[[Any], Q] | None = None  # Q of the objects that are the user's own
    is_own: Callable[[Any, Any], bool] | None = None


_constraint_fields: dict[type, ConstraintFields] = {}

# Document kinds the connectors produce, with their labels (for the rule form). Apps add theirs with
# ``register_document_kind``; a rule may still name a kind nobody registered (it then matches only
# documents of exactly that kind).
DOCUMENT_KINDS: dict[str, str] = {}


def register_document_kind(kind: str, label: str) -> None:
    DOCUMENT_KINDS[kind] = label


def register_constraint_fields(model: type[Model], constrained: ConstraintFields) -> None:
    _constraint_fields[model] = constrained


def constrained_models() -> list[type[Model]]:
    """The models whose objects permission rules can be asked about (the admin's explain form)."""
    return list(_constraint_fields)


def _value(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


@dataclass
class Principal:
    """What the rules need to know about a user: read from the database, or from this process's copy
    while no change can have been made since (``sso.snapshot``: a revoked ERP role, a removed group stops
    working at the next check)."""

    user: Any
    group_ids: set[int] = field(default_factory=set)
    roles: set[tuple[int, str]] = field(default_factory=set)  # (connector id, role)
    departments: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, user: Any) -> Principal:
        batch = _batch.get()
        if batch is not None and user.pk in batch.principals:
            return batch.principals[user.pk]
        if snapshot.max_age() > 0:
            return cls.made(user, snapshot.principals([user.pk])[user.pk])
        # PERMISSION_CACHE_SECONDS = 0: two queries at every check.
        principal = cls(user=user, group_ids=set(user.groups.values_list("pk", flat=True)))
        for connector_id, roles, department in ErpIdentity.objects.filter(user=user).values_list(
            "connector_id", "roles", "department"
        ):
            principal.roles.update((connector_id, role) for role in roles or [])
            if department:
                principal.departments.add(department)
        return principal

    @classmethod
    def made(cls, user: Any, who: snapshot.Who) -> Principal:
        """The caller's own user object with copies of the kept sets: nothing shared is handed out."""
        return cls(user=user, group_ids=set(who.group_ids), roles=set(who.roles), departments=set(who.departments))

    def holds(self, rule: PermissionRule, via_user: bool, via_group: bool) -> str | None:
        """Why ``rule`` applies to this user (None when it does not): named in it (``via_user``), a
        member of one of its groups (``via_group``), or holding one of its ERP roles."""
        if via_user:
            return _("named in the rule")
        if via_group:
            return _("member of one of its groups")
        for role in rule.erp_roles or []:
            if any(r == role and (rule.connector_id in (None, c)) for c, r in self.roles):
                return _("ERP role %(role)s") % {"role": role}
        return None


def rules_for(principal: Principal, action: str) -> list[tuple[PermissionRule, str]]:
    """The enabled rules granting ``action`` that apply to ``principal``, with why they apply.

    One query: the rules naming the user, one of their groups, or any ERP role (roles are matched
    here, in Python, because JSON containment is not portable across SQLite and PostgreSQL). Inside
    ``read_once`` none: the batch read every enabled rule with its users and groups; with the process's
    copy (``sso.snapshot``) none either while it is valid."""
    batch = _batch.get()
    every = batch.rules if batch is not None else snapshot.rules() if snapshot.max_age() > 0 else None
    if every is not None:
        candidates = [(rule, principal.user.pk in user_ids, bool(principal.group_ids & group_ids))
                      for rule, user_ids, group_ids in every]
    else:
        through_users = PermissionRule.users.through.objects.filter(permissionrule=OuterRef("pk"),
                                                                    user=principal.user)
        through_groups = PermissionRule.groups.through.objects.filter(
            permissionrule=OuterRef("pk"), group_id__in=principal.group_ids
        )
        candidates = [
            (rule, rule.via_user, rule.via_group)
            for rule in PermissionRule.objects.filter(enabled=True)
            .annotate(via_user=Exists(through_users), via_group=Exists(through_groups))
            .filter(Q(via_user=True) | Q(via_group=True) | ~Q(erp_roles=[]))
            .order_by("name")
        ]
    found = []
    for rule, via_user, via_group in candidates:
        if action not in (rule.actions or []):
            continue
        why = principal.holds(rule, via_user, via_group)
        if why:
            found.append((rule, why))
    return found


@dataclass
class _ReadOnce:
    principals: dict[int, Principal]
    rules: list[tuple[PermissionRule, frozenset[int], frozenset[int]]]  # every enabled rule, its users and groups
    delegations: dict[int, tuple[Delegation, ...]]  # not ended when read, by delegate; in force: see at use


_batch: contextvars.ContextVar[_ReadOnce | None] = contextvars.ContextVar("permissions_read_once", default=None)


@contextlib.contextmanager
def read_once(users: Iterable[Any]) -> Iterator[None]:
    """Inside this block the rules, the principals of ``users`` (groups, ERP roles, departments) and
    their delegations are what one read at its start found: at most six queries for any number of users
    (none for what this process keeps, ``sso.snapshot``), where each check would read them again. For a
    batch of work done in one go (the cards of one send); a role revoked meanwhile counts from the next
    batch, as it does from the next request. Whether a delegation is in force is decided when it is used."""
    users = {user.pk: user for user in users if user is not None and user.pk is not None}
    with snapshot.pinned():
        who = snapshot.principals(users)
        batch = _ReadOnce(principals={pk: Principal.made(user, who[pk]) for pk, user in users.items()},
                          rules=snapshot.rules(), delegations=snapshot.delegations(users))
        token = _batch.set(batch)
        try:
            yield
        finally:
            _batch.reset(token)


def _constraint_failures(rule: PermissionRule, principal: Principal, obj: Any,
                         constrained: ConstraintFields) -> list[str]:
    """Each constraint of ``rule`` that ``obj`` does not meet, in words."""
    failures = []

    def missing(dimension: str) -> str:
        return _("%(what)s cannot be checked on this object") % {"what": dimension}

    if rule.document_kinds:
        if not constrained.kind:
            failures.append(missing(_("document kind")))
        elif _value(obj, constrained.kind) not in rule.document_kinds:
            failures.append(_("document kind %(value)s is not in %(allowed)s") % {
                "value": _value(obj, constrained.kind) or "—", "allowed": ", ".join(rule.document_kinds)})
    if rule.max_amount is not None:
        if not (constrained.amount and constrained.currency):
            failures.append(missing(_("amount")))
        else:
            amount, currency = _value(obj, constrained.amount), _value(obj, constrained.currency)
            if rule.currency and currency != rule.currency:
                failures.append(_("currency %(currency)s is not %(limit)s") % {"currency": currency,
                                                                              "limit": rule.currency})
            # The magnitude is compared: a credit of -99,999,999 is not "at most 50,000".
            elif amount is None or abs(Decimal(amount)) > rule.max_amount:
                failures.append(_("amount %(amount)s is over %(limit)s") % {"amount": amount,
                                                                           "limit": rule.max_amount})
    for allowed, path, label in (
        (rule.projects, constrained.project, _("project")),
        (rule.cost_centers, constrained.cost_center, _("cost center")),
        (rule.warehouses, constrained.warehouse, _("warehouse")),
        (rule.customers, constrained.customer, _("customer")),
    ):
        if not allowed:
            continue
        if not path:
            failures.append(missing(label))
        elif _value(obj, path) not in allowed:
            failures.append(_("%(what)s %(value)s is not in %(allowed)s") % {
                "what": label, "value": _value(obj, path) or "—", "allowed": ", ".join(allowed)})
    if rule.own_department:
        if not constrained.department:
            failures.append(missing(_("department")))
        elif _value(obj, constrained.department) not in principal.departments:
            failures.append(_("department %(value)s is not yours")
                            % {"value": _value(obj, constrained.department) or "—"})
    if rule.own_documents:
        if not constrained.is_own:
            failures.append(missing(_("ownership")))
        elif not constrained.is_own(principal.user, obj):
            failures.append(_("not your own"))
    return failures


@dataclass(frozen=True)
class Grant:
    allowed: bool
    chain: tuple[str, ...]


def grant(user: Any, action: str, obj: Any = None) -> Grant:
    """Does a rule grant ``action`` on ``obj`` (or the action at all, when ``obj`` is None) to ``user``?
    The chain says, rule by rule, why or why not."""
    principal = Principal.of(user)
    applicable = rules_for(principal, action)
    if not applicable:
        return Grant(False, (_("no rule grants %(action)s to this user") % {"action": action},))
    if obj is None:
        rule, why = applicable[0]
        return Grant(True, (_("rule “%(rule)s” (%(why)s)") % {"rule": rule.name, "why": why},))
    constrained = _constraint_fields.get(type(obj))
    if constrained is None:
        return Grant(False, (_("%(model)s objects are not covered by rules") % {"model": type(obj).__name__},))
    chain = []
    for rule, why in applicable:
        failures = _constraint_failures(rule, principal, obj, constrained)
        if not failures:
            chain.append(_("rule “%(rule)s” (%(why)s) grants it") % {"rule": rule.name, "why": why})
            return Grant(True, tuple(chain))
        chain.append(_("rule “%(rule)s” (%(why)s) does not: %(failures)s") % {
            "rule": rule.name, "why": why, "failures": "; ".join(failures)})
    return Grant(False, tuple(chain))


def _rule_q(rule: PermissionRule, principal: Principal, constrained: ConstraintFields) -> Q | None:
    """The objects ``rule`` covers as a filter; None when a constraint cannot be expressed (refuse)."""
    q = Q()
    if rule.document_kinds:
        if not constrained.kind:
            return None
        q &= Q(**{f"{constrained.kind}__in": list(rule.document_kinds)})
    if rule.max_amount is not None:
        if not (constrained.amount and constrained.currency):
            return None
        # |amount| ≤ limit, as in _constraint_failures.
        q &= Q(**{f"{constrained.amount}__lte": rule.max_amount, f"{constrained.amount}__gte": -rule.max_amount})
        if rule.currency:
            q &= Q(**{constrained.currency: rule.currency})
    for allowed, path in (
        (rule.projects, constrained.project),
        (rule.cost_centers, constrained.cost_center),
        (rule.warehouses, constrained.warehouse),
        (rule.customers, constrained.customer),
    ):
        if allowed:
            if not path:
                return None
            q &= Q(**{f"{path}__in": list(allowed)})
    if rule.own_department:
        if not constrained.department:
            return None
        q &= Q(**{f"{constrained.department}__in": sorted(principal.departments)})
    if rule.own_documents:
        if not constrained.own:
            return None
        q &= constrained.own(principal.user)
    return q


def granted_queryset(queryset: QuerySet, user: Any, action: str) -> QuerySet:
    """``queryset`` narrowed to the objects some rule grants ``action`` on to ``user``."""
    constrained = _constraint_fields.get(queryset.model)
    if constrained is None:
        return queryset.none()
    principal = Principal.of(user)
    combined: Q | None = None
    for rule, _why in rules_for(principal, action):
        q = _rule_q(rule, principal, constrained)
        if q is not None:
            combined = q if combined is None else combined | q
    if combined is None:
        return queryset.none()
    return queryset.filter(pk__in=queryset.filter(combined).values("pk"))


def active_delegations(delegate: Any, action: str, at=None) -> list[Delegation]:
    """Delegations in force now (or ``at``) that let ``delegate`` do ``action`` for someone else."""
    batch = _batch.get()
    if at is None and batch is not None and delegate.pk in batch.principals:
        kept = batch.delegations.get(delegate.pk, ())
    elif at is None and snapshot.max_age() > 0:
        kept = snapshot.delegations([delegate.pk])[delegate.pk]
    else:
        kept = None
    if kept is not None:
        # Kept rows are shared by the process: each caller gets its own copies. In force is decided
        # here, now, so a delegation that ended a second ago is not honoured.
        now = _now()
        in_force = [_own_copy(d) for d in kept if d.starts_at <= now < d.ends_at]
    else:
        in_force = _delegations_in_force(Delegation.objects.filter(delegate=delegate), at or _now())
    return [d for d in in_force if action in (d.actions or []) and d.delegator.is_active]


def _now() -> Any:
    return timezone.now()  # tests replace it to move a delegation's end past


def _own_copy(delegation: Delegation) -> Delegation:
    mine = copy.copy(delegation)
    mine.delegator = copy.copy(delegation.delegator)
    return mine


def _delegations_in_force(delegations: QuerySet, at: Any) -> list[Delegation]:
    return list(delegations.filter(starts_at__lte=at, ends_at__gt=at).select_related("delegator").order_by("starts_at"))


def delegators_of(delegate: Any, action: str) -> Iterable[Any]:
    return [d.delegator for d in active_delegations(delegate, action)]
