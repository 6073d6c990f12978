"""Writeback through a real Celery worker on the Redis broker (``celery -A portal worker``).

The worker is a separate process on the pytest-django test database, so these tests use
``transactional_db``: what the test commits, the worker sees, and the other way round.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from approvals import services
from approvals.models import ApprovalDocument, Decision
from erp.connectors.demo.models import AppliedDecision, FaultPlan, PurchaseRequisition
from portal.celery import app as celery_app

from .worker import (
    VISIBILITY_TIMEOUT,
    forget_queue,
    publish_to,
    start_worker,
    unacked_for_queue,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

DOCUMENT = "PR-2026-0042"
WRITEBACK_TIMEOUT = 15.0


@pytest.fixture
def workers(transactional_db, demo, redis_url, settings, tmp_path):
    """Start workers on a queue of this test's own; the test process publishes to it for real.

    ``demo`` is set up first, with tasks still eager (the conftest default). Every worker started
    is SIGKILLed at teardown, and the queue's leftovers are removed from Redis.
    """
    queue = f"test-worker-{uuid.uuid4().hex}"
    env = worker_env(queue=queue, redis_url=redis_url, db=settings.DATABASES["default"])
    started = []

    def start(**extra: str):
        worker = start_worker({**env, **extra}, tmp_path)
        started.append(worker)
        worker.wait_ready()
        return worker

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(redis_url)
    start.queue = queue
    start.redis = client
    start.started = started
    try:
        with publish_to(celery_app, broker_url=redis_url, queue=queue):
            yield start
    finally:
        for worker in started:
            worker.kill()
        forget_queue(client, queue)
        client.close()


def decide(users, key: str) -> Decision:
    document = ApprovalDocument.objects.get(external_id=DOCUMENT)
    result = services.decide(users["li.si"], document.pk, "approved", comment="同意", idempotency_key=key)
    assert not result.replayed
    return result.decision


def set_faults(**plan) -> None:
    FaultPlan.objects.update_or_create(pk=1, defaults=plan)


def logs(workers) -> str:
    return "\n".join(f"--- {w.name} ---\n{w.log()}" for w in workers.started)


def writeback_finished(decision: Decision) -> Decision | None:
    decision.refresh_from_db()
    return decision if decision.writeback_status != Decision.Writeback.PENDING else None


def test_decision_is_written_back_by_the_worker(workers, users):
    workers()
    decision = decide(users, "worker-a")

    wait_for(lambda: writeback_finished(decision), WRITEBACK_TIMEOUT, "the writeback",
             details=lambda: logs(workers))

    assert decision.writeback_status == Decision.Writeback.DONE, decision.writeback_error
    assert decision.writeback_attempts == 1
    assert PurchaseRequisition.objects.get(number=DOCUMENT).state == "approved"
    applied = AppliedDecision.objects.get(document_number=DOCUMENT)
    assert applied.idempotency_key == "worker-a" and applied.actor == "li.si"
    assert decision.erp_reference == str(applied.pk)


def test_transient_erp_failures_are_retried_by_the_worker(workers, users):
    set_faults(transient_failures_left=2)
    workers()  # RETRY_BASE_SECONDS=0.2: retries follow within a second
    decision = decide(users, "worker-transient")

    wait_for(lambda: writeback_finished(decision), WRITEBACK_TIMEOUT, "the writeback",
             details=lambda: logs(workers))

    assert decision.writeback_status == Decision.Writeback.DONE, decision.writeback_error
    assert decision.writeback_attempts == 3
    assert FaultPlan.current().transient_failures_left == 0
    assert PurchaseRequisition.objects.get(number=DOCUMENT).state == "approved"
    assert AppliedDecision.objects.filter(document_number=DOCUMENT).count() == 1


def kill_after_the_erp_wrote(workers, users, key: str):
    """Decide; let the worker's ERP call commit and then stall; SIGKILL the worker right there.

    Returns the decision (still pending in the portal) and the ERP's record of it.
    """
    set_faults(stall_seconds=30)  # far longer than the test: the worker can only die in it
    first = workers()
    decision = decide(users, key)
    applied = wait_for(
        lambda: AppliedDecision.objects.filter(idempotency_key=key).first(),
        WRITEBACK_TIMEOUT, "the ERP to apply the decision", details=lambda: logs(workers),
    )
    first.kill()
    set_faults(stall_seconds=0)

    decision.refresh_from_db()
    assert decision.writeback_status == Decision.Writeback.PENDING
    assert decision.writeback_attempts == 1
    assert PurchaseRequisition.objects.get(number=DOCUMENT).state == "approved"
    return decision, applied


def assert_written_back_once_by_a_replay(decision: Decision, applied: AppliedDecision) -> None:
    assert decision.writeback_status == Decision.Writeback.DONE, decision.writeback_error
    # Attempt 2 found the ERP's record under the same idempotency key (a replay): had it written
    # again, the ERP would have answered with a conflict (the document is no longer waiting).
    assert decision.writeback_attempts == 2
    assert list(AppliedDecision.objects.filter(document_number=DOCUMENT)) == [applied]
    assert decision.erp_reference == str(applied.pk)
    assert PurchaseRequisition.objects.get(number=DOCUMENT).state == "approved"
    document = ApprovalDocument.objects.get(external_id=DOCUMENT)
    assert document.status == "approved"
    assert document.history.filter(action="writeback_done").count() == 1


def test_worker_killed_mid_task_is_redelivered_by_the_broker(workers, users):
    """The issue's requirement: a worker killed mid-task still ends with one decision written back,
    once. Recovery here is the broker's: the unacknowledged message (acks_late) goes back to the
    queue once the visibility timeout has passed, when the next worker starts."""
    decision, applied = kill_after_the_erp_wrote(workers, users, "worker-killed")

    unacked = list(unacked_for_queue(workers.redis, workers.queue).values())
    assert [u.task for u in unacked] == ["approvals.tasks.write_back"], (
        "the killed worker's message should wait unacknowledged in Redis"
    )
    # kombu restores unacknowledged messages older than the visibility timeout in a sweep that a
    # worker runs when it starts and then every second here (CELERY_RESTORE_SWEEP_SECONDS).
    time.sleep(max(0.0, unacked[0].delivered_at + VISIBILITY_TIMEOUT + 0.5 - time.time()))
    second = workers()

    wait_for(lambda: writeback_finished(decision), WRITEBACK_TIMEOUT, "the redelivered writeback",
             details=lambda: logs(workers))
    assert_written_back_once_by_a_replay(decision, applied)
    # It was the very message the killed worker had taken, and it is acknowledged now.
    wait_for(lambda: f"write_back[{unacked[0].task_id}] succeeded" in second.log(), 5,
             "the redelivered task to succeed", details=second.log)
    wait_for(lambda: not unacked_for_queue(workers.redis, workers.queue), 5, "the redelivered task's ack")


def test_lost_task_is_requeued_by_the_safety_net(workers, users, monkeypatch):
    """Same crash, but the message is lost too (a broker restart without persistence): the beat
    safety net ``requeue_stale_work`` finds the pending writeback and queues it again."""
    from portal import tasks

    decision, applied = kill_after_the_erp_wrote(workers, users, "worker-lost")
    forget_queue(workers.redis, workers.queue)  # the message is gone
    workers()

    monkeypatch.setattr(tasks, "STALE_AFTER", tasks.STALE_AFTER * 0)
    assert tasks.requeue_stale_work()["writebacks"] == 1

    wait_for(lambda: writeback_finished(decision), WRITEBACK_TIMEOUT, "the re-queued writeback",
             details=lambda: logs(workers))
    assert_written_back_once_by_a_replay(decision, applied)
