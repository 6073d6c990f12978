"""Periodic safety net (Celery beat; a thread in the embedded demo): nothing stays stuck.

Re-queues stored ERP events not handled yet, outbox rows (cards and group-chat operations), card
edits and writebacks whose retry time has come, or whose task was lost (a broker restart, a worker
killed before it acknowledged). All these tasks are idempotent, so re-queuing one that is still
running does no harm. The kinds of work are registered by their apps (``register_requeuer`` in
``AppConfig.ready()``); this module imports none of them.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

STALE_AFTER = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class StaleWindow:
    """One tick's times, the same for every kind of work: ``retry_overdue`` (a scheduled retry due by
    then is re-queued), ``stale`` (work never attempted since before then is re-queued), ``lease`` (the
    time a re-queued row is stamped with so that the next ticks leave it alone), ``now``."""

    now: dt.datetime
    stale: dt.datetime
    retry_overdue: dt.datetime
    lease: dt.datetime


# claim(window) runs inside the tick's transaction: it locks (skip_locked) and leases the rows that are
# due, returning one argument per task to queue (a primary key, or a batch of them);
# ``task.delay(argument)`` is queued for each after the commit.
ClaimFn = Callable[[StaleWindow], list[Any]]


@dataclass(frozen=True)
class Requeuer:
    name: str
    claim: ClaimFn
    task: Any


_REQUEUERS: dict[str, Requeuer] = {}


def register_requeuer(name: str, claim: ClaimFn, task: Any) -> None:
    """Put a kind of idempotent work under the safety net (idempotent per name). Apps call it in their
    ``AppConfig.ready()``: im (deliveries, card edits), approvals (writebacks)."""
    _REQUEUERS[name] = Requeuer(name, claim, task)


def requeuers() -> dict[str, Requeuer]:
    return dict(_REQUEUERS)


@shared_task
def requeue_stale_work() -> dict[str, int]:
    from django.conf import settings

    now = timezone.now()
    stale = now - STALE_AFTER
    window = StaleWindow(
        now=now, stale=stale, retry_overdue=now if settings.CELERY_TASK_ALWAYS_EAGER else stale,
        lease=now + STALE_AFTER,
    )
    with transaction.atomic():
        claimed = {name: (requeuer, requeuer.claim(window)) for name, requeuer in _REQUEUERS.items()}
    # After the commit: an in-process (eager) task then overwrites the lease with its own outcome.
    for requeuer, pks in claimed.values():
        for pk in pks:
            requeuer.task.delay(pk)
    return {name: len(pks) for name, (_requeuer, pks) in claimed.items()}


def queue_after_commit(task: Any, *args: Any) -> None:
    """Queue ``task(*args)`` once the transaction commits, for the three kinds of work this safety net
    covers (sends, card edits, writebacks). Their rows are saved by then, so a broker that is down must
    not turn a stored event or a recorded decision into an error answer: the failure is logged and the
    safety net queues the work when the broker is back. In-process (eager) the task runs right here
    and its errors propagate as before."""
    transaction.on_commit(lambda: queue_now(task, *args))


def queue_now(task: Any, *args: Any) -> bool:
    """``queue_after_commit`` for rows already committed, from code that holds no database connection
    (the intake's notifier thread, erp/asgi.py). Returns whether the task was queued."""
    from django.conf import settings

    try:
        task.delay(*args)
    except Exception:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            raise
        logger.warning("could not queue %s%r; the safety net will", task.name, args, exc_info=True)
        return False
    return True
