"""Rate limits: token buckets (in-process, and shared through Redis) and the outbox waiting for them."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import pytest
from django.utils import timezone

from im import ratelimit, services
from im.models import Delivery
from im.platforms import ADAPTER_CLASSES
from im.platforms.base import SentMessage

sent_at: list[float] = []


class CountingAdapter:
    """Stands in for a platform: records when each card left."""

    platform = "slack"

    def address_of(self, user) -> str:
        return "U0SAMECHANNEL"

    def send_card(self, address, card, *, idempotency_key):
        sent_at.append(time.monotonic())
        return SentMessage(message_id=f"D0CHANNEL {uuid.uuid4().hex}")

    def update_card(self, address, message_id, card):
        pass


@pytest.fixture
def limited(settings, monkeypatch):
    """Slack limited to ``rate`` per second per channel, through a counting adapter."""
    monkeypatch.setitem(ADAPTER_CLASSES, "slack", "tests.test_ratelimit.CountingAdapter")
    settings.IM_RATE_LIMIT_PREFIX = f"test-ratelimit:{uuid.uuid4().hex}"  # a fresh bucket per test
    settings.IM_RATE_LIMITS = {"slack": {"rate": 5.0, "burst": 1, "scope": "recipient"}}
    ratelimit._buckets.clear()
    sent_at.clear()
    yield settings
    ratelimit._buckets.clear()


def burst(demo_user, topic: str, n: int) -> list[int]:
    return [Delivery.objects.create(dedupe_key=f"burst:{uuid.uuid4().hex}", topic=topic, recipient=demo_user,
                                    platform="slack").pk for _ in range(n)]


def drain(ids: list[int], timeout: float = 15.0) -> None:
    """What the worker and the requeue beat do: send each row when it is due, until none is queued."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        due = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.QUEUED).exclude(
            next_attempt_at__gt=timezone.now())
        if not Delivery.objects.filter(pk__in=ids, status=Delivery.Status.QUEUED).exists():
            return
        for pk in due.values_list("pk", flat=True):
            services.send_delivery(pk)
        time.sleep(0.02)
    raise AssertionError("the burst was not sent in time")


def a_visible_topic(users):
    """A topic li.si was sent a card for by the demo, so a card can be built for her."""
    from im.cards import build_card

    for topic in Delivery.objects.filter(recipient=users["li.si"], status=Delivery.Status.SENT).values_list(
        "topic", flat=True
    ):
        if build_card(topic, users["li.si"]) is not None:
            return topic
    raise AssertionError("the demo sent li.si nothing")


# --- the buckets ----------------------------------------------------------------------------------

def test_a_local_bucket_gives_its_burst_then_waits():
    buckets = ratelimit.LocalBuckets()
    assert [buckets.take("k", 1.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("k", 1.0, 3)
    assert 0.9 < wait <= 1.0
    assert buckets.take("other", 1.0, 3) == 0.0  # one bucket per scope


def test_no_limit_configured_means_no_wait(settings):
    settings.IM_RATE_LIMITS = {"slack": {"rate": 0}}
    assert ratelimit.acquire("slack", "U1") == 0.0
    assert ratelimit.acquire("devinbox", "x") == 0.0


def test_a_redis_outage_does_not_stop_deliveries(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.IM_RATE_LIMITS = {"slack": {"rate": 1.0, "burst": 1}}
    ratelimit._buckets.clear()
    try:
        assert ratelimit.acquire("slack", "U1") == 0.0
    finally:
        ratelimit._buckets.clear()


def test_without_redis_a_burst_waits_in_the_outbox_and_nothing_fails(demo, users, limited):
    limited.REDIS_URL = ""
    # 1 per second: a send slowed by a loaded machine (0.2–0.3 s seen) must not refill the bucket meanwhile.
    limited.IM_RATE_LIMITS = {"slack": {"rate": 1.0, "burst": 1, "scope": "recipient"}}
    ids = burst(users["li.si"], a_visible_topic(users), 4)
    wait = [services.send_delivery(pk) for pk in ids]
    assert wait[0] is None and all(w and w > 0 for w in wait[1:])
    waiting = Delivery.objects.get(pk=ids[1])
    assert waiting.status == Delivery.Status.QUEUED and waiting.attempts == 0 and waiting.next_attempt_at
    drain(ids)
    assert set(Delivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert sent_at[-1] - sent_at[0] >= 3 / 1 * 0.9  # 4 cards at 1/s with a burst of 1: ≥ 3 s


# --- shared through Redis (marked services: they fail instead of skipping under REQUIRE_SERVICES=1) ---

@pytest.mark.services
def test_with_redis_a_burst_is_spread_over_time_and_none_fails(demo, users, limited, redis_url):
    limited.REDIS_URL = redis_url
    ids = burst(users["li.si"], a_visible_topic(users), 6)
    drain(ids)
    rows = Delivery.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert set(rows.values_list("attempts", flat=True)) == {1}  # waiting for the bucket is no failed attempt
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)]
    assert sent_at[-1] - sent_at[0] >= 5 / 5 * 0.9, gaps  # 6 cards at 5/s with a burst of 1: ≥ 1 s


def _hammer(url: str, key: str, seconds: float, results) -> None:
    buckets = ratelimit.RedisBuckets(url)
    granted, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        if buckets.take(key, 10.0, 1) == 0:
            granted += 1
        time.sleep(0.005)
    results.put(granted)


@pytest.mark.services
def test_two_processes_share_one_bucket(redis_url):
    key = f"test-ratelimit:{uuid.uuid4().hex}:shared"
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(redis_url, key, 1.5, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    granted = [results.get(timeout=5) for _ in workers]
    # One bucket of 10/s for 1.5 s gives about 16 in all; two separate buckets would give about 32.
    assert all(g > 0 for g in granted), granted
    assert sum(granted) <= 10 * 1.5 + 1 + 3, granted


@pytest.mark.services
def test_the_redis_and_local_buckets_agree(redis_url):
    remote = ratelimit.RedisBuckets(redis_url)
    key = f"test-ratelimit:{uuid.uuid4().hex}:agree"
    assert [remote.take(key, 2.0, 2) for _ in range(2)] == [0.0, 0.0]
    wait = remote.take(key, 2.0, 2)
    assert 0.4 < wait <= 0.5
