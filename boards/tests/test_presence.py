"""Who is looking at a board: a socket's row is kept fresh by its heartbeat while it watches, gone
when it closes, and swept by beat when its process died without closing it."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from boards import presence
from boards.models import BoardPresence
from notifications.models import ChatGroup, ChatGroupMember
from widgets.consumers import LiveConsumer


def make_group(*members) -> ChatGroup:
    group = ChatGroup.objects.create(name="Low stock", purpose=ChatGroup.Purpose.WAR_ROOM, platform="devinbox",
                                     idempotency_key=f"presence-test-{timezone.now().timestamp()}")
    for user in members:
        ChatGroupMember.objects.create(group=group, user=user, reason="test")
    return group


@pytest.fixture
def published(monkeypatch) -> list[str]:
    topics: list[str] = []
    monkeypatch.setattr(presence, "publish_now", lambda topic, version: topics.append(topic))
    return topics


@pytest.mark.django_db
def test_sweep_removes_rows_whose_heartbeat_stopped_and_tells_their_boards(published, settings):
    settings.PRESENCE_HEARTBEAT_SECONDS = 30
    crashed_on, alive_on = make_group(), make_group()
    now = timezone.now()
    BoardPresence.objects.create(group=crashed_on, channel_name="specific.dead!1", viewer_name="张三",
                                 viewer_key="user:1", seen_at=now - dt.timedelta(seconds=91))
    BoardPresence.objects.create(group=alive_on, channel_name="specific.live!2", viewer_name="李四",
                                 viewer_key="user:2", seen_at=now - dt.timedelta(seconds=89))

    assert presence.sweep(now) == 1
    assert list(BoardPresence.objects.values_list("channel_name", flat=True)) == ["specific.live!2"]
    assert published == [f"board.{crashed_on.pk}"]  # open boards refetch who is looking
    assert presence.sweep(now) == 0 and published == [f"board.{crashed_on.pk}"]


@pytest.mark.django_db
def test_heartbeat_refreshes_the_row_and_brings_back_a_swept_one(published):
    user = get_user_model().objects.create_user("zhang.san")
    group = make_group(user)
    topic = f"board.{group.pk}"
    presence.join(user, topic, "specific.a!1")
    row = BoardPresence.objects.get()
    BoardPresence.objects.filter(pk=row.pk).update(seen_at=timezone.now() - dt.timedelta(minutes=5))

    presence.heartbeat(user, topic, "specific.a!1")
    assert BoardPresence.objects.get().seen_at > timezone.now() - dt.timedelta(seconds=5)

    BoardPresence.objects.all().delete()  # swept during a long pause: the next beat shows them again
    presence.heartbeat(user, topic, "specific.a!1")
    assert BoardPresence.objects.get().viewer_key == f"user:{user.pk}"


def test_beat_runs_the_sweep_at_the_heartbeat_interval():
    [entry] = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "boards.tasks.sweep_presence"]
    assert entry["schedule"] == django_settings.PRESENCE_HEARTBEAT_SECONDS


@pytest.mark.django_db(transaction=True)
async def test_an_open_socket_beats_and_its_row_is_not_swept(settings):
    settings.PRESENCE_HEARTBEAT_SECONDS = 0.2
    user = await sync_to_async(get_user_model().objects.create_user)("li.si")
    group = await sync_to_async(make_group)(user)
    ws = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
    ws.scope["user"] = user
    assert (await ws.connect())[0]
    await ws.send_json_to({"subscribe": f"board.{group.pk}"})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": f"board.{group.pk}"}
    first = await sync_to_async(lambda: BoardPresence.objects.get(group=group).seen_at)()

    await asyncio.sleep(1.0)  # several beats
    beaten = await sync_to_async(lambda: BoardPresence.objects.get(group=group).seen_at)()
    assert beaten > first
    assert await sync_to_async(presence.sweep)(beaten) == 0  # fresh as of its last beat

    await ws.disconnect()
    assert not await sync_to_async(BoardPresence.objects.filter(group=group).exists)()
