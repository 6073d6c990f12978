"""Live updates over the Channels consumer: subscriptions are checked, decisions are pushed."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from approvals import services
from approvals.models import ApprovalDocument
from portal.asgi import application
from widgets.consumers import LiveConsumer
from widgets.live import current_version, grouped, publish_now

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.fixture
def world(transactional_db):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    setup_demo()
    users = {u.username: u for u in get_user_model().objects.all()}
    return users, ApprovalDocument.objects.get(external_id="PR-2026-0042")


async def test_decision_is_pushed_to_every_subscriber(world):
    users, document = world
    watchers = [await connect(users["li.si"]), await connect(users["zhang.san"])]
    for ws in watchers:
        await ws.send_json_to({"subscribe": document.topic})
        assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}

    await sync_to_async(services.decide)(users["li.si"], document.pk, "approved", idempotency_key="live-1")

    for ws in watchers:
        pushed = await ws.receive_json_from(timeout=2)
        assert pushed["topic"] == document.topic and pushed["version"] > document.version
        await ws.disconnect()


async def test_a_document_change_is_pushed_at_once_and_the_next_one_too(world, settings):
    """Document topics are not held back to coalesce: with a 30 s window, both the decision and the
    change after it (its writeback) reach the page, newest last, long before the window ends."""
    settings.LIVE_COALESCE_SECONDS = 30
    users, document = world
    ws = await connect(users["zhang.san"])
    await ws.send_json_to({"subscribe": document.topic})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}

    await sync_to_async(services.decide)(users["li.si"], document.pk, "approved", idempotency_key="live-now")
    # The decision's version, or its writeback's when both were published before the push was checked
    # (a newer version supersedes one not sent yet): either way long before the 30 s window.
    first = await ws.receive_json_from(timeout=5)
    assert first["topic"] == document.topic and first["version"] >= document.version + 1
    await sync_to_async(publish_now)(document.topic, document.version + 2)
    await sync_to_async(publish_now)(document.topic, document.version + 3)
    seen = [(await ws.receive_json_from(timeout=5))["version"]]
    while seen[-1] < document.version + 3:
        seen.append((await ws.receive_json_from(timeout=5))["version"])
    assert seen == sorted(seen) and seen[-1] == document.version + 3
    await ws.disconnect()


async def test_subscription_to_someone_elses_document_is_refused_like_a_missing_one(world):
    users, document = world
    ws = await connect(users["chen.qi"])
    await ws.send_json_to({"subscribe": document.topic})
    refused = await ws.receive_json_from(timeout=2)
    await ws.send_json_to({"subscribe": "approval.999999"})
    missing = await ws.receive_json_from(timeout=2)
    assert refused == {"refused": document.topic} and missing == {"refused": "approval.999999"}
    await sync_to_async(services.decide)(users["li.si"], document.pk, "approved", idempotency_key="live-2")
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_anonymous_and_malformed_subscriptions(world):
    users, document = world
    ws = await connect(AnonymousUser())
    await ws.send_json_to({"subscribe": document.topic})
    assert await ws.receive_json_from(timeout=2) == {"refused": document.topic}
    await ws.send_json_to({"subscribe": f"inbox.{users['li.si'].pk}"})
    assert (await ws.receive_json_from(timeout=2))["refused"]
    await ws.send_json_to({"subscribe": "../../etc"})
    assert await ws.receive_json_from(timeout=2) == {"error": "bad topic"}
    await ws.send_json_to(["not", "an", "object"])
    assert await ws.receive_json_from(timeout=2) == {"error": "expected an object"}
    await ws.disconnect()


async def test_own_inbox_only(world):
    users, _document = world
    ws = await connect(users["li.si"])
    await ws.send_json_to({"subscribe": f"inbox.{users['li.si'].pk}"})
    assert "subscribed" in await ws.receive_json_from(timeout=2)
    await ws.send_json_to({"subscribe": f"inbox.{users['zhang.san'].pk}"})
    assert "refused" in await ws.receive_json_from(timeout=2)
    await ws.disconnect()


async def test_websocket_from_a_foreign_origin_is_rejected(world):
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected


async def test_frames_that_are_not_json_are_answered_not_crashed_on(world):
    """A frame that is not JSON text (garbage, a binary frame, JSON nested past the parser's depth) gets
    an error answer; the socket stays open and keeps working (it used to close with 1011)."""
    users, document = world
    ws = await connect(users["li.si"])
    for frame in ("notjson", "[" * 100_000 + "]" * 100_000, "{\"subscribe\": "):
        await ws.send_to(text_data=frame)
        assert await ws.receive_json_from(timeout=2) == {"error": "expected JSON"}
    await ws.send_to(bytes_data=b"\x00\x01")
    assert await ws.receive_json_from(timeout=2) == {"error": "expected JSON"}
    await ws.send_json_to({"subscribe": document.topic})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}
    await ws.disconnect()


async def test_dev_inbox_phone_topics_only_for_a_browser_signed_in_to_that_phone(world, settings):
    """A phone's pushes say when its owner gets a card: an anonymous socket, or another user's, is
    refused a phone (or group chat) it has not signed in to, like a missing one; the phone's owner and
    a browser that unlocked the phone (dev inbox session proof) are subscribed."""
    from django.contrib.sessions.backends.db import SessionStore

    from im.platforms.devinbox.models import DevInboxGroup
    from im.platforms.devinbox.views import PHONES_KEY

    settings.DEV_INBOX_ENABLED = True
    users, _document = world
    li, zhao = users["li.si"], users["zhao.liu"]
    chat = await sync_to_async(DevInboxGroup.objects.create)(name="low stock", members=[str(li.pk)])
    phone, group = f"devinbox.{li.pk}", f"devinbox.group{chat.pk}"

    for viewer in (AnonymousUser(), zhao):
        ws = await connect(viewer)
        for topic in (phone, group, "devinbox.999999", "devinbox.group999999"):
            await ws.send_json_to({"subscribe": topic})
            assert await ws.receive_json_from(timeout=2) == {"refused": topic}
        await ws.disconnect()

    ws = await connect(li)
    for topic in (phone, group):
        await ws.send_json_to({"subscribe": topic})
        assert await ws.receive_json_from(timeout=2) == {"subscribed": topic}
    await ws.disconnect()

    session = SessionStore()
    session[PHONES_KEY] = [li.pk]
    await sync_to_async(session.save)()
    unlocked = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    unlocked.scope["user"] = AnonymousUser()
    unlocked.scope["session"] = SessionStore(session.session_key)
    assert (await unlocked.connect())[0]
    for topic in (phone, group):
        await unlocked.send_json_to({"subscribe": topic})
        assert await unlocked.receive_json_from(timeout=2) == {"subscribed": topic}
    await unlocked.send_json_to({"subscribe": f"devinbox.{zhao.pk}"})
    assert await unlocked.receive_json_from(timeout=2) == {"refused": f"devinbox.{zhao.pk}"}
    await unlocked.disconnect()


async def test_publishes_grouped_for_a_batch_leave_together_once_per_topic_with_the_last_version(world):
    """A worker's batch of events publishes through ``grouped()``: nothing leaves before the block ends,
    then each topic once, with its last version, to the pages and the shared cache."""
    users, document = world
    ws = await connect(users["zhang.san"])
    await ws.send_json_to({"subscribe": document.topic})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}

    def batch() -> None:
        before = current_version(document.topic)
        with grouped():
            publish_now(document.topic, document.version + 1)
            publish_now("approval.999999", 7)
            publish_now(document.topic, document.version + 2)
            assert current_version(document.topic) == before  # held until the block ends

    await sync_to_async(batch)()
    assert await ws.receive_json_from(timeout=5) == {"topic": document.topic, "version": document.version + 2}
    assert await ws.receive_nothing(timeout=0.3)
    assert await sync_to_async(current_version)(document.topic) == document.version + 2
    assert await sync_to_async(current_version)("approval.999999") == 7
    await ws.disconnect()


def test_publishes_in_one_transaction_leave_once_per_topic_after_its_commit(transactional_db, monkeypatch):
    """Thirty stock moves in one transaction are one push per topic, with the last version; a
    rolled-back savepoint takes back its own publishes and nothing else; another commit hook
    registered in between keeps its place."""
    from django.db import transaction

    from widgets import live

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(live, "publish_now", lambda topic, version: sent.append((topic, version)))
    monkeypatch.setattr(live, "publish_many", lambda versions: sent.extend(versions.items()))
    with transaction.atomic():
        for version in range(1, 31):
            live.publish("item.SKU-1", version)
            live.publish("stock.1", version)
        assert sent == []  # nothing before the commit
    assert sent == [("item.SKU-1", 30), ("stock.1", 30)]

    sent.clear()
    with transaction.atomic():
        live.publish("item.SKU-1", 31)
        try:
            with transaction.atomic():
                live.publish("item.SKU-1", 99)
                live.publish("stock.rolled-back", 1)
                raise RuntimeError
        except RuntimeError:
            pass
        transaction.on_commit(lambda: sent.append(("other hook", 0)))
        live.publish("stock.1", 31)
    assert sent == [("item.SKU-1", 31), ("other hook", 0), ("stock.1", 31)]

    sent.clear()
    live.publish("item.SKU-1", 32)  # outside a transaction: at once
    assert sent == [("item.SKU-1", 32)]


async def test_a_push_costs_no_hop_to_the_database_thread_but_is_still_checked(world, monkeypatch):
    """Channels hops to its database thread before every message it dispatches to a consumer; a push
    reaches each socket without that hop (with a thousand sockets per process it queued a thousand
    calls on one thread per push), and its permission check still runs. Other messages keep the hop."""
    import channels.consumer

    from sso.models import PermissionRule

    hops: list[str] = []
    real = channels.consumer.aclose_old_connections

    async def counted() -> None:
        hops.append("hop")
        await real()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    users, document = world
    ws = await connect(users["li.si"])
    await ws.send_json_to({"subscribe": document.topic})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}
    assert hops  # the connection and the subscription went through Channels' own dispatch

    hops.clear()
    await sync_to_async(publish_now)(document.topic, document.version + 1)
    assert await ws.receive_json_from(timeout=5) == {"topic": document.topic, "version": document.version + 1}
    assert hops == []

    # Still checked at push time: li.si loses access and is told so instead of getting the push.
    await sync_to_async(lambda: PermissionRule.objects.all().delete())()
    await sync_to_async(lambda: document.assignments.all().delete())()
    from widgets import consumers

    consumers._verdicts.clear()
    await sync_to_async(publish_now)(document.topic, document.version + 2)
    assert await ws.receive_json_from(timeout=5) == {"revoked": document.topic}
    assert hops == []
    await ws.disconnect()


async def test_a_process_subscribes_once_per_topic_whatever_its_sockets(world, monkeypatch):
    """The hub (widgets.consumers.TopicHub) is the topic group's one member in this process: sockets
    come and go without touching the channel layer's group until the last one leaves, a push reaches
    every socket still watching, and a viewer's revocation drops only that viewer's socket."""
    from channels.layers import get_channel_layer

    from widgets import consumers
    from widgets.live import group_name

    users, document = world
    layer = get_channel_layer()
    group = group_name(document.topic)
    members: list[tuple[str, str]] = []  # (add/discard, channel) for the topic's group, on any layer
    real_add, real_discard = layer.group_add, layer.group_discard

    async def group_add(name: str, channel: str) -> None:
        members.extend([("add", channel)] if name == group else [])
        await real_add(name, channel)

    async def group_discard(name: str, channel: str) -> None:
        members.extend([("discard", channel)] if name == group else [])
        await real_discard(name, channel)

    monkeypatch.setattr(layer, "group_add", group_add)
    monkeypatch.setattr(layer, "group_discard", group_discard)
    watchers = [await connect(users["li.si"]), await connect(users["li.si"]), await connect(users["zhang.san"])]
    for ws in watchers:
        await ws.send_json_to({"subscribe": document.topic})
        assert await ws.receive_json_from(timeout=2) == {"subscribed": document.topic}
    assert [op for op, _channel in members] == ["add"]  # one channel joined: the hub's, not one per socket

    await watchers[0].send_json_to({"unsubscribe": document.topic})
    await sync_to_async(publish_now)(document.topic, document.version + 1)
    for ws in watchers[1:]:
        assert await ws.receive_json_from(timeout=5) == {"topic": document.topic, "version": document.version + 1}
    assert await watchers[0].receive_nothing(timeout=0.3)

    # Verdicts are per viewer: li.si's is now "no" (as a revocation leaves it), zhang.san's "yes".
    now = time.monotonic()
    consumers._verdicts[(users["li.si"].pk, document.topic)] = (False, now)
    consumers._verdicts[(users["zhang.san"].pk, document.topic)] = (True, now)
    await sync_to_async(publish_now)(document.topic, document.version + 2)
    answers = [await ws.receive_json_from(timeout=5) for ws in watchers[1:]]
    assert answers[0] == {"revoked": document.topic}
    assert answers[1] == {"topic": document.topic, "version": document.version + 2}

    await watchers[2].disconnect()
    assert members == [("add", members[0][1]), ("discard", members[0][1])]  # the last socket gone: left
    for ws in watchers[:2]:
        await ws.disconnect()
