"""Periodic safety net (Celery beat; a thread in the embedded demo): nothing stays stuck.

Re-queues stored ERP events not handled yet, outbox rows (cards and group-chat operations), card
edits and writebacks whose retry time has come, or whose task was lost (a broker restart, a worker
killed before it acknowledged). All these tasks are idempotent, so re-queuing one that is still
running does no harm.

Two rules keep it from adding work of its own (tests/test_faults.py found both):
- With a broker, a scheduled retry has its own countdown task; the safety net steps in only when
  that retry is overdue by ``STALE_AFTER`` (its task was lost). Re-queuing it the moment it was due
  ran two attempts per retry, so an outage used up the attempts twice as fast. In-process (embedded,
  eager) nothing else schedules retries: there, due is due.
- A re-queued row is stamped with a lease (its next-attempt time moved ``STALE_AFTER`` ahead; a
  card edit's ``updated_at`` set to now) so that the next ticks leave it alone while its task waits
  in the queue. Without it every tick added one more task per waiting row, and a backlog behind a slow or
  restarted worker grew instead of draining.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(seconds=60)


@shared_task
def requeue_stale_work() -> dict[str, int]:
    from django.conf import settings

    from approvals.models import Decision
    from approvals.tasks import write_back
    from erp.models import InboundEvent
    from erp.tasks import handle_events
    from im.models import Delivery, MessageRef
    from im.tasks import send_delivery, update_message

    now = timezone.now()
    stale = now - STALE_AFTER
    retry_overdue = now if settings.CELERY_TASK_ALWAYS_EAGER else stale
    lease = now + STALE_AFTER
    with transaction.atomic():
        # skip_locked: a row locked right now is being sent by a worker.
        deliveries = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(Q(next_attempt_at__lte=retry_overdue) | Q(next_attempt_at=None, created_at__lte=stale),
                    status=Delivery.Status.QUEUED)
            .values_list("pk", flat=True)[:500]
        )
        Delivery.objects.filter(pk__in=deliveries).update(next_attempt_at=lease)
        refs = list(
            MessageRef.objects.select_for_update(skip_locked=True)
            .filter(needs_update=True, updated_at__lte=stale)
            .values_list("pk", flat=True)[:500]
        )
        MessageRef.objects.filter(pk__in=refs).update(updated_at=now)
        decisions = list(
            Decision.objects.select_for_update(skip_locked=True)
            .filter(Q(writeback_next_at__lte=retry_overdue) | Q(writeback_next_at=None, created_at__lte=stale),
                    writeback_status=Decision.Writeback.PENDING)
            .values_list("pk", flat=True)[:500]
        )
        Decision.objects.filter(pk__in=decisions).update(writeback_next_at=lease)
        # Stored events whose handling task was lost (a broker restart): received long enough ago.
        # No lease needed: handling claims them with SKIP LOCKED and a handled event is no longer received.
        events = list(
            InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED, received_at__lte=stale)
            .order_by("pk").values_list("pk", flat=True)[:500]
        )
    # After the commit: an in-process (eager) task then overwrites the lease with its own outcome.
    if events:
        handle_events.delay(events)
    for pk in deliveries:
        send_delivery.delay(pk)
    for pk in refs:
        update_message.delay(pk)
    for pk in decisions:
        write_back.delay(pk)
    return {"events": len(events), "deliveries": len(deliveries), "card_edits": len(refs),
            "writebacks": len(decisions)}


def queue_after_commit(task: Any, *args: Any) -> None:
    """Queue ``task(*args)`` once the transaction commits, for the three kinds of work this safety net
    covers (sends, card edits, writebacks). Their rows are saved by then, so a broker that is down must
    not turn a stored event or a recorded decision into an error answer: the failure is logged and the
    safety net queues the work when the broker is back. In-process (eager) the task runs right here
    and its errors propagate as before."""
    from django.conf import settings

    def send() -> None:
        try:
            task.delay(*args)
        except Exception:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                raise
            logger.warning("could not queue %s%r; the safety net will", task.name, args, exc_info=True)

    transaction.on_commit(send)
