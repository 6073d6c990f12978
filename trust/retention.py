"""Retention: per kind of record (and optionally per platform) keep N days, then destroy in batches.

Kinds live in a registry that each app fills with its own records in ``AppConfig.ready()``
(``im``: sent cards, ``erp``: event payloads, ``bot``: bot exchanges, ``notifications``: group-chat
records; ``trust`` itself: audit entries); this module imports none of them::

    register_retention_kind("bot_exchanges", due_fn, destroy_fn, label=_("bot exchanges"))

``queryset_fn(cutoff, platform, other_platforms, holds)`` returns the rows due (older than
``cutoff``, not under a legal hold; ``platform`` is None for every platform but ``other_platforms``,
which have policies of their own); ``destroy_fn(rows, policy)`` destroys one batch and returns how
many records it destroyed. Each batch commits together with an audit entry saying kind and count.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from trust.models import AuditEntry, ChainHead, LegalHold, RetentionPolicy
from trust.services import record

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass(frozen=True)
class Holds:
    """What active legal holds protect."""

    document_ids: frozenset[int] = frozenset()
    document_numbers: frozenset[str] = frozenset()
    user_ids: frozenset[int] = frozenset()
    groups: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def active(cls) -> Holds:
        rows = list(LegalHold.objects.filter(released_at__isnull=True).select_related("document"))
        return cls(
            document_ids=frozenset(h.document_id for h in rows if h.document_id),
            document_numbers=frozenset(h.document.external_id for h in rows if h.document_id),
            user_ids=frozenset(h.user_id for h in rows if h.user_id),
            groups=frozenset((h.group_platform, h.group_chat_id) for h in rows if h.scope == LegalHold.Scope.GROUP),
        )


QuerysetFn = Callable[[dt.datetime, str | None, list[str], Holds], models.QuerySet]
DestroyFn = Callable[[list[Any], RetentionPolicy], int]


@dataclass(frozen=True)
class RetentionKind:
    name: str
    queryset_fn: QuerysetFn
    destroy_fn: DestroyFn
    label: Any = ""
    per_platform: bool = False


_KINDS: dict[str, RetentionKind] = {}


def register_retention_kind(
    name: str, queryset_fn: QuerysetFn, destroy_fn: DestroyFn, *, label: Any = "", per_platform: bool = False
) -> None:
    """Make records of ``name`` subject to retention policies (idempotent per name)."""
    _KINDS[name] = RetentionKind(name, queryset_fn, destroy_fn, label or name, per_platform)


def kinds() -> dict[str, RetentionKind]:
    return dict(_KINDS)


def kind_choices() -> list[tuple[str, Any]]:
    return [(k.name, k.label) for k in _KINDS.values()]


# --- the run ---


@dataclass
class RunResult:
    destroyed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.destroyed.values())


def run(now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int = 100) -> RunResult:
    """Destroy what every enabled policy says is due. Bounded: at most ``max_batches`` per policy and
    run, so that beat's next tick continues a large backlog."""
    now = now or timezone.now()
    result = RunResult()
    holds = Holds.active()
    policies = list(RetentionPolicy.objects.filter(enabled=True))
    own = {}
    for policy in policies:
        if policy.platform:
            own.setdefault(policy.kind, []).append(policy.platform)
    for policy in policies:
        kind = _KINDS.get(policy.kind)
        if kind is None:
            logger.warning("retention policy %s names an unknown kind", policy)
            continue
        cutoff = now - dt.timedelta(days=policy.keep_days)
        platform = policy.platform or None
        others = [] if platform else own.get(policy.kind, [])
        count = 0
        for _batch in range(max_batches):
            with transaction.atomic():
                rows = list(kind.queryset_fn(cutoff, platform, others, holds)[:batch_size])
                if not rows:
                    break
                destroyed = kind.destroy_fn(rows, policy)
                if destroyed and kind.name != "audit_entries":  # that one records itself, with the new base
                    record(
                        "retention.destroyed",
                        object_type="trust.RetentionPolicy",
                        object_id=str(policy.pk),
                        summary={"kind": policy.kind, "platform": policy.platform, "count": destroyed},
                    )
                count += destroyed
            if len(rows) < batch_size or not destroyed:
                break
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_run_at=now, last_run_count=count)
        key = f"{policy.kind}@{policy.platform}" if policy.platform else policy.kind
        result.destroyed[key] = count
    return result


# --- built-in kinds ---


def platform_filter(qs: models.QuerySet, platform: str | None, others: list[str], field_name: str = "platform"):
    """Rows of ``platform`` only, or (for the general policy) of every platform without a policy of its own."""
    if platform:
        return qs.filter(**{field_name: platform})
    return qs.exclude(**{f"{field_name}__in": others}) if others else qs


def delete_rows(rows: list[Any], policy: RetentionPolicy) -> int:
    """Destroy one batch of plain rows (nothing to recall elsewhere)."""
    if not rows:
        return 0
    type(rows[0]).objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)


def _audit_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Holds):
    # Only a prefix of the chain can go: stop at the first entry that is recent or under a hold.
    stop = AuditEntry.objects.filter(at__gte=cutoff)
    held = Q()
    if holds.user_ids:
        held |= Q(actor_pk__in=holds.user_ids)
    if holds.document_ids:
        held |= Q(object_type="approvals.ApprovalDocument", object_id__in=[str(i) for i in holds.document_ids])
    if held:
        stop = AuditEntry.objects.filter(Q(at__gte=cutoff) | held)
    first_kept = stop.order_by("seq").values_list("seq", flat=True).first()
    qs = AuditEntry.objects.order_by("seq")
    return qs.filter(seq__lt=first_kept) if first_kept is not None else qs.none()


def _audit_destroy(rows: list[Any], policy: RetentionPolicy) -> int:
    if not rows:
        return 0
    last = max(rows, key=lambda e: e.seq)
    head = ChainHead.objects.select_for_update().get(pk=1)
    # Bypasses the append-only queryset on purpose: this is the one sanctioned way entries go.
    models.QuerySet.delete(AuditEntry.objects.filter(seq__lte=last.seq))
    head.base_seq, head.base_hash = last.seq, last.hash
    head.save(update_fields=["base_seq", "base_hash"])
    # The retention entry written next (same transaction) names the new base, so verify_audit can
    # tell this destruction from a deletion.
    record(
        "retention.destroyed",
        object_type="trust.RetentionPolicy",
        object_id=str(policy.pk),
        summary={"kind": policy.kind, "platform": "", "count": len(rows),
                 "through_seq": last.seq, "through_hash": last.hash},
    )
    return len(rows)


def register_builtin_kinds() -> None:
    """trust's own kind; the other apps register theirs in their AppConfig.ready()."""
    register_retention_kind("audit_entries", _audit_due, _audit_destroy, label=_("audit entries"))
