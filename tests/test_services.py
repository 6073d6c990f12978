"""The production shape: concurrent decisions on PostgreSQL, live updates through the Redis channel
layer, and /readyz checking Redis. These skip without the services, and fail under REQUIRE_SERVICES=1."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from approvals import services
from approvals.models import ApprovalDocument, Decision
from tests.concurrency import run_together
from widgets.consumers import LiveConsumer

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

DOCUMENT = "PR-2026-0042"


@pytest.fixture
def world(transactional_db, postgres):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    setup_demo()
    users = {u.username: u for u in get_user_model().objects.all()}
    return users, ApprovalDocument.objects.get(external_id=DOCUMENT)


def test_racing_decisions_on_postgres_make_exactly_one(world):
    users, document = world
    approver = users["li.si"]

    results = run_together(
        lambda: services.decide(approver, document.pk, "approved", idempotency_key="race-approve"),
        lambda: services.decide(approver, document.pk, "rejected", comment="价格偏高", idempotency_key="race-reject"),
    )

    won = [r for r in results if isinstance(r, services.DecideResult)]
    lost = [r for r in results if isinstance(r, services.DecisionError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].status == 409
    assert Decision.objects.filter(document=document).count() == 1
    document.refresh_from_db()
    assert document.status == won[0].decision.outcome
    assert document.history.filter(action__in=["approved", "rejected"]).count() == 1


def test_a_double_tap_racing_on_postgres_is_one_decision(world):
    users, document = world
    approver = users["li.si"]

    results = run_together(
        *[lambda: services.decide(approver, document.pk, "approved", idempotency_key="double-tap")] * 3
    )

    assert all(isinstance(r, services.DecideResult) for r in results), results
    assert sorted(r.replayed for r in results) == [False, True, True]
    assert len({r.decision.pk for r in results}) == 1
    assert Decision.objects.filter(document=document).count() == 1


@pytest.fixture
def redis_layer(redis_url, settings):
    """The Redis channel layer (pub/sub, as in production) on a prefix of this test's own."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
        }
    }
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


async def test_live_updates_travel_through_the_redis_channel_layer(transactional_db, redis_layer):
    from channels_redis.pubsub import RedisPubSubChannelLayer
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    assert isinstance(redis_layer, RedisPubSubChannelLayer)
    await sync_to_async(setup_demo)()
    li_si = await get_user_model().objects.aget(username="li.si")
    document = await ApprovalDocument.objects.aget(external_id=DOCUMENT)

    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = li_si
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"subscribe": document.topic})
    assert await communicator.receive_json_from(timeout=2) == {"subscribed": document.topic}

    await sync_to_async(services.decide)(li_si, document.pk, "approved", idempotency_key="redis-layer")

    pushed = await communicator.receive_json_from(timeout=3)
    assert pushed["topic"] == document.topic and pushed["version"] > document.version
    await communicator.disconnect()


async def test_a_publish_from_a_thread_without_a_loop_uses_one_publisher_loop(transactional_db, redis_layer):
    """A Celery worker publishes from sync code with no event loop: through this process's one publisher
    loop (widgets.live), whose Redis connection is kept, not a new loop and connection per publish."""
    import threading

    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo
    from widgets import live

    await sync_to_async(setup_demo)()
    li_si = await get_user_model().objects.aget(username="li.si")
    document = await ApprovalDocument.objects.aget(external_id=DOCUMENT)
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = li_si
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"subscribe": document.topic})
    assert await communicator.receive_json_from(timeout=2) == {"subscribed": document.topic}

    loops = []

    def worker_thread() -> None:  # like a pool process's task: no loop, no Daphne thread-local
        for version in (document.version + 1, document.version + 2):
            live.publish_now(document.topic, version)
            loops.append(live._loop)

    thread = threading.Thread(target=worker_thread)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    assert loops[0] is not None and loops[0] is loops[1]
    seen = [(await communicator.receive_json_from(timeout=3))["version"]]
    while seen[-1] < document.version + 2:
        seen.append((await communicator.receive_json_from(timeout=3))["version"])
    assert seen[-1] == document.version + 2
    await communicator.disconnect()


def test_readyz_checks_redis_when_configured(client, db, redis_url, settings):
    settings.REDIS_URL = redis_url
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert {name for name, check in ready.json()["checks"].items() if check["ok"]} >= {"database", "redis"}

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["failed"] == ["redis"] and down.json()["checks"]["redis"]["error"]
