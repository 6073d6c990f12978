from __future__ import annotations

import re

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from widgets.live import group_name
from widgets.topics import may_subscribe

TOPIC_RE = re.compile(r"^[a-z]+\.[A-Za-z0-9_-]{1,64}$")
MAX_SUBSCRIPTIONS = 50


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page, multiplexing topic subscriptions.

    Client sends ``{"subscribe": "approval.12"}``; the server answers ``{"subscribed": …}`` or
    ``{"refused": …}`` (the same answer for "forbidden" and "does not exist"), then pushes
    ``{"topic", "version"}`` whenever the topic changes.
    """

    async def connect(self) -> None:
        # Anonymous sockets are accepted: each topic's check decides (only the dev inbox, when it is
        # enabled, lets anonymous viewers subscribe).
        self.topics: set[str] = set()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for topic in getattr(self, "topics", set()):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.send_json({"error": "expected an object"})
            return
        topic = content.get("subscribe") or content.get("unsubscribe")
        if not isinstance(topic, str) or not TOPIC_RE.match(topic):
            await self.send_json({"error": "bad topic"})
            return
        if "unsubscribe" in content:
            self.topics.discard(topic)
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)
            return
        if len(self.topics) >= MAX_SUBSCRIPTIONS:
            await self.send_json({"refused": topic, "reason": "too many subscriptions"})
            return
        verdict = await database_sync_to_async(may_subscribe)(self.scope["user"], topic)
        if not verdict.allowed:
            await self.send_json({"refused": topic})
            return
        self.topics.add(topic)
        await self.channel_layer.group_add(group_name(topic), self.channel_name)
        await self.send_json({"subscribed": topic})

    async def live_update(self, event) -> None:
        await self.send_json({"topic": event["topic"], "version": event["version"]})
