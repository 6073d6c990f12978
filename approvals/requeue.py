"""What the safety net (``portal.tasks.requeue_stale_work``) re-queues of approvals: pending writebacks."""

from __future__ import annotations

from django.db.models import Q

from approvals.models import Decision
from portal.tasks import StaleWindow


def claim_writebacks(window: StaleWindow) -> list[int]:
    due = Q(writeback_next_at__lte=window.retry_overdue) | Q(writeback_next_at=None, created_at__lte=window.stale)
    decisions = list(
        Decision.objects.select_for_update(skip_locked=True)
        .filter(due, writeback_status=Decision.Writeback.PENDING)
        .values_list("pk", flat=True)[:500]
    )
    Decision.objects.filter(pk__in=decisions).update(writeback_next_at=window.lease)
    return decisions
