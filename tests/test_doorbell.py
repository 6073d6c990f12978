"""The workers' doorbell (erp/doorbell.py): one handling task waiting at a time, and no stored event left
waiting for the safety net because a ring was spared."""

from __future__ import annotations

import uuid

import pytest

from erp import doorbell, tasks
from erp.handling import handle_received
from erp.intake import tell_workers
from erp.models import InboundEvent
from portal.celery import app as celery_app


@pytest.fixture
def bell(settings, redis_url, monkeypatch):
    """The doorbell of a queue of this test's own on the Redis broker; what was published to it."""
    queue = f"test-doorbell-{uuid.uuid4().hex[:12]}"
    monkeypatch.setitem(celery_app.conf, "broker_url", redis_url)
    monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    published: list[list[int]] = []
    monkeypatch.setattr(tasks.handle_events, "delay", lambda ids: published.append(list(ids)))
    client, key = doorbell._bell()
    assert queue in key
    yield published
    client.delete(key)


def stored(connector, count: int) -> list[InboundEvent]:
    return InboundEvent.objects.bulk_create(
        InboundEvent(connector=connector, webhook_id=f"msg_bell_{uuid.uuid4().hex}", event_id=uuid.uuid4().hex,
                     type="erp.nothing.happened", source="urn:test", data={}, status=InboundEvent.Status.RECEIVED)
        for _ in range(count)
    )


@pytest.mark.services
def test_a_ring_while_a_task_waits_queues_nothing_and_the_next_task_start_opens_it_again(bell):
    assert doorbell.ring() is True
    assert doorbell.ring() is False  # the task queued by the first ring has not started
    client, key = doorbell._bell()
    assert 0 < client.ttl(key) <= doorbell.RING_SECONDS  # a lost task silences it only this long
    doorbell.answer()  # that task starts
    assert doorbell.ring() is True


@pytest.mark.services
def test_events_stored_while_a_task_waits_are_claimed_by_it(connector, bell):
    first = stored(connector, 1)
    assert tell_workers([e.pk for e in first]) is True
    later = stored(connector, 3)  # the intake tells the workers again for these: the task is still waiting
    assert tell_workers([e.pk for e in later]) is False
    assert bell == [[first[0].pk]]

    handled = tasks.handle_events.run([first[0].pk])  # the one task, as a worker runs it

    assert handled == 4
    assert not InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).exists()
    after = stored(connector, 1)
    assert tell_workers([after[0].pk]) is True  # the task answered: the next event rings
    assert bell == [[first[0].pk], [after[0].pk]]


@pytest.mark.services
def test_a_failed_publish_leaves_the_bell_open(connector, bell, monkeypatch):
    def broker_down(ids):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.handle_events, "delay", broker_down)
    assert tell_workers([stored(connector, 1)[0].pk]) is False
    monkeypatch.setattr(tasks.handle_events, "delay", bell.append)
    assert tell_workers([stored(connector, 1)[0].pk]) is True  # not silenced by the failed one


@pytest.mark.services
def test_a_full_claim_wakes_another_worker(postgres, connector):
    rows = stored(connector, 3)
    woken: list[list[int]] = []
    assert handle_received(limit=2, when_full=woken.append) == 2
    assert woken == [[rows[0].pk, rows[1].pk]]
    assert handle_received(limit=2, when_full=woken.append) == 1
    assert len(woken) == 1  # a claim with room to spare found everything there was


def test_without_a_redis_broker_every_ring_queues(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "broker_url", "memory://localhost/")
    assert doorbell.ring() is True and doorbell.ring() is True


def test_redis_not_answering_rings(monkeypatch):
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")  # nothing listens there
    assert doorbell.ring() is True
    doorbell.answer()  # logged, not raised
