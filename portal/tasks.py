"""Periodic safety net (Celery beat; a thread in the embedded demo): nothing stays stuck.

Re-queues outbox rows, card edits and writebacks whose retry time has come, or whose task was
lost (a broker restart, a worker killed before it acknowledged). All three tasks are idempotent,
so re-queuing one that is still running does no harm.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

STALE_AFTER = dt.timedelta(seconds=60)


@shared_task
def requeue_stale_work() -> dict[str, int]:
    from approvals.models import Decision
    from approvals.tasks import write_back
    from im.models import Delivery, MessageRef
    from im.tasks import send_delivery, update_message

    now = timezone.now()
    stale = now - STALE_AFTER
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at=None, created_at__lte=stale)
    deliveries = list(Delivery.objects.filter(due, status=Delivery.Status.QUEUED).values_list("pk", flat=True)[:500])
    for pk in deliveries:
        send_delivery.delay(pk)
    refs = list(MessageRef.objects.filter(needs_update=True, updated_at__lte=stale).values_list("pk", flat=True)[:500])
    for pk in refs:
        update_message.delay(pk)
    decisions = list(
        Decision.objects.filter(
            Q(writeback_next_at__lte=now) | Q(writeback_next_at=None, created_at__lte=stale),
            writeback_status=Decision.Writeback.PENDING,
        ).values_list("pk", flat=True)[:500]
    )
    for pk in decisions:
        write_back.delay(pk)
    return {"deliveries": len(deliveries), "card_edits": len(refs), "writebacks": len(decisions)}
