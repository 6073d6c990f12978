"""Regression tests for the bugs the fault suite (tests/test_faults.py) found, small enough to run
everywhere (the last one needs PostgreSQL's row locks)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from approvals.models import ApprovalDocument
from im import services
from im.models import Delivery, MessageRef
from im.platforms.base import SentMessage
from portal import tasks


class Platform:
    """An adapter that accepts every card, counting them; ``gate`` holds a send until set."""

    platform = "devinbox"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sent: list[str] = []
        self.gate = gate
        self.sending = threading.Event()

    def address_of(self, user) -> str:
        return user.get_username()

    def send_card(self, address: str, card, *, idempotency_key: str) -> SentMessage:
        self.sending.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        self.sent.append(idempotency_key)
        return SentMessage(message_id=f"m-{idempotency_key}")


def queued(users, key: str, login: str = "li.si") -> Delivery:
    document = ApprovalDocument.objects.order_by("pk").first()
    return Delivery.objects.create(dedupe_key=key, topic=document.topic, recipient=users[login], platform="devinbox")


def test_card_accepted_then_database_lost_is_recorded_not_sent_again(transactional_db, users, monkeypatch):
    """The platform answered 2xx, then the row's save failed (Postgres went away): the card is
    recorded as sent once the database answers, and never sent a second time."""
    platform = Platform()
    monkeypatch.setattr(services, "get_adapter", lambda name: platform)
    delivery = queued(users, "regression:db-lost")
    real_record = services._record_batch
    failures: list[bool] = []

    def record_failing_once(done):  # the sender records a batch's outcomes in one transaction
        if any(d.status == Delivery.Status.SENT for d in done) and not failures:
            failures.append(True)
            raise OperationalError("server closed the connection unexpectedly")
        return real_record(done)

    monkeypatch.setattr(services, "_record_batch", record_failing_once)
    assert services.send_delivery(delivery.pk) is None
    assert services.send_delivery(delivery.pk) is None  # a redelivered task: nothing left to do

    delivery.refresh_from_db()
    assert failures and platform.sent == ["regression:db-lost"]
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1 and delivery.card
    assert MessageRef.objects.get(delivery=delivery).message_id == "m-regression:db-lost"


@pytest.mark.parametrize("eager", [False, True])
def test_safety_net_leaves_scheduled_retries_to_their_task_and_requeues_once(db, users, settings, monkeypatch,
                                                                            eager):
    """With a broker, a retry that is merely due has its own countdown task: re-queuing it too ran
    two attempts per retry. A row the safety net re-queued is leased, not re-queued every tick."""
    settings.CELERY_TASK_ALWAYS_EAGER = eager
    requeued: list[int] = []
    monkeypatch.setattr("im.tasks.send_delivery.delay", requeued.append)
    now = timezone.now()
    due = queued(users, "regression:due")
    overdue = queued(users, "regression:overdue")
    Delivery.objects.filter(pk=due.pk).update(next_attempt_at=now - dt.timedelta(seconds=1))
    Delivery.objects.filter(pk=overdue.pk).update(next_attempt_at=now - tasks.STALE_AFTER * 2)

    tasks.requeue_stale_work()
    assert sorted(requeued) == sorted([due.pk, overdue.pk] if eager else [overdue.pk])
    requeued.clear()
    tasks.requeue_stale_work()  # the next tick, while those tasks still wait in the queue
    assert requeued == []
    assert Delivery.objects.get(pk=overdue.pk).next_attempt_at > now


@pytest.mark.services
def test_two_cards_to_one_person_are_sent_at_once(transactional_db, postgres, users, monkeypatch):
    """Sending a card locked the recipient's user row too (select_for_update + select_related), so a
    second card to the same person was skipped as "being sent elsewhere" and waited for the safety
    net; and decide() deadlocked against it. Only the outbox row is locked now."""
    gate = threading.Event()
    slow = Platform(gate)
    monkeypatch.setattr(services, "get_adapter", lambda name: slow)
    first, second = queued(users, "regression:first"), queued(users, "regression:second")

    def send_first() -> None:
        try:
            services.send_delivery(first.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=send_first)
    thread.start()
    try:
        assert slow.sending.wait(10)  # the first send holds its row lock now
        fast = Platform()
        monkeypatch.setattr(services, "get_adapter", lambda name: fast)
        assert services.send_delivery(second.pk) is None
        assert fast.sent == ["regression:second"]
    finally:
        gate.set()
        thread.join(10)
    assert set(Delivery.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {
        Delivery.Status.SENT}


def test_a_broker_that_is_down_does_not_turn_a_stored_event_or_decision_into_an_error(
    demo, users, send_event, settings, monkeypatch, committed
):
    """Fault suite finding 4: the event and the decision are saved before their tasks are queued;
    a queue that cannot be reached is the safety net's to make up for, not a 500 for the ERP."""
    from kombu.exceptions import OperationalError as BrokerDown

    from approvals import services as approvals
    from approvals.models import Decision
    from approvals.tasks import write_back
    from im import tasks as im_tasks
    from tests.conftest import approval_requested

    def down(*args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(im_tasks.send_delivery, "delay", down)
    monkeypatch.setattr(write_back, "delay", down)
    response = send_event("erp.approval.requested", approval_requested("PR-2026-0977"))
    assert response.status_code == 202, response.content
    document = ApprovalDocument.objects.get(external_id="PR-2026-0977")
    assert Delivery.objects.filter(topic=document.topic, status=Delivery.Status.QUEUED).exists()
    with committed():
        approvals.decide(users["li.si"], document.pk, "approved", idempotency_key="broker-down-1")
    decision = Decision.objects.get(document=document)
    assert decision.writeback_status == "pending"  # recorded, its writeback waiting for the safety net
