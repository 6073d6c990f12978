"""What the safety net (``portal.tasks.requeue_stale_work``) re-queues of im: outbox rows and card edits."""

from __future__ import annotations

from django.db.models import Q

from im.models import Delivery, MessageRef
from portal.tasks import StaleWindow


def claim_deliveries(window: StaleWindow) -> list[int]:
    # skip_locked: a row locked right now is being sent by a worker.
    deliveries = list(
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(Q(next_attempt_at__lte=window.retry_overdue) | Q(next_attempt_at=None, created_at__lte=window.stale),
                status=Delivery.Status.QUEUED)
        .values_list("pk", flat=True)[:500]
    )
    Delivery.objects.filter(pk__in=deliveries).update(next_attempt_at=window.lease)
    return deliveries


def claim_card_edits(window: StaleWindow) -> list[int]:
    refs = list(
        MessageRef.objects.select_for_update(skip_locked=True)
        .filter(needs_update=True, updated_at__lte=window.stale)
        .values_list("pk", flat=True)[:500]
    )
    MessageRef.objects.filter(pk__in=refs).update(updated_at=window.now)
    return refs
