from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import weakref
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from widgets.live import current_version, group_name
from widgets.topics import coalesces, guest_viewer_from, may_subscribe, presence_hooks

logger = logging.getLogger(__name__)

# Push-time verdicts, per process: (user id, topic) -> (allowed, checked at). A push carries only a
# topic and a version (the data is fetched over HTTP, authorized every time), so reusing a verdict
# for LIVE_RECHECK_SECONDS costs at most that long of "this changed" after a revocation, and spares
# a permission check per socket per push when thousands watch one topic.
_verdicts: dict[tuple[int | str | None, str], tuple[bool, float]] = {}
# One check in flight per (user, topic): when a push reaches a thousand sockets of one viewer at
# once, they all wait for the same check instead of queueing a thousand on the database thread.
_inflight: dict[tuple[int | str | None, str], asyncio.Future] = {}


async def _allowed_now(user, topic: str) -> bool:
    key = (_viewer_key(user), topic)
    now = time.monotonic()
    cached = _verdicts.get(key)
    if cached is not None and now - cached[1] < settings.LIVE_RECHECK_SECONDS:
        return cached[0]
    pending = _inflight.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future = asyncio.get_running_loop().create_future()
    _inflight[key] = future
    try:
        allowed = (await database_sync_to_async(may_subscribe)(user, topic)).allowed
        if len(_verdicts) > 50_000:
            _verdicts.clear()
        _verdicts[key] = (allowed, time.monotonic())
        future.set_result(allowed)
        return allowed
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved here, so an unawaited future does not warn
        raise
    finally:
        _inflight.pop(key, None)


TOPIC_RE = re.compile(r"^[a-z]+\.[A-Za-z0-9_-]{1,64}$")
MAX_SUBSCRIPTIONS = 50


def _viewer_key(user) -> int | str | None:
    # Guests have no pk: each is told apart by its pass (``live_key``), never lumped with the others.
    return getattr(user, "live_key", None) or getattr(user, "pk", None)


class TopicHub:
    """This process's sockets per live topic, fed by ONE channel-layer subscription per topic.

    A push used to reach each socket through the channel layer's queue of that socket, its receive
    loop, its own coalescing task and timer, then its own JSON encoding: per socket, per change (the
    fan-out's largest cost after Daphne's framing, bench/fanout.py). Here the change arrives once per
    process, bursts are coalesced once per topic, the viewers' verdicts are asked once per viewer, the
    message is encoded once, and each socket only sends it. One hub per event loop and channel layer
    (tests run several loops and layers in one process).
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.sockets: dict[str, set[LiveConsumer]] = {}
        self.pending: dict[str, int] = {}
        self.flushes: dict[str, asyncio.Task] = {}
        self.reader: asyncio.Task | None = None
        # Membership changes one at a time: a last socket leaving (unsubscribe) and a first one joining
        # (subscribe) must reach the channel layer in the order they happened here.
        self.lock = asyncio.Lock()

    async def join(self, consumer: LiveConsumer, topic: str) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel("live-hub.")
                self.reader = asyncio.ensure_future(self._read())
            sockets = self.sockets.get(topic)
            if sockets is None:
                sockets = self.sockets[topic] = set()
                await self.layer.group_add(group_name(topic), self.channel)
            sockets.add(consumer)

    async def leave(self, consumer: LiveConsumer, topic: str) -> None:
        async with self.lock:
            sockets = self.sockets.get(topic)
            if sockets is None or consumer not in sockets:
                return
            sockets.discard(consumer)
            if not sockets:
                del self.sockets[topic]
                self.pending.pop(topic, None)
                await self.layer.group_discard(group_name(topic), self.channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # the layer's connection; it reconnects, the pages' refetch covers the gap
                logger.warning("live hub: reading the channel layer failed; trying again", exc_info=True)
                await asyncio.sleep(1)
                continue
            if message.get("type") == "live.update":
                self._update(message["topic"], message["version"])

    def _update(self, topic: str, version: int) -> None:
        if topic not in self.sockets:
            return
        self.pending[topic] = max(version, self.pending.get(topic, version))
        self._schedule(topic)

    def _schedule(self, topic: str) -> None:
        if topic not in self.flushes and topic in self.pending:
            delay = settings.LIVE_COALESCE_SECONDS if coalesces(topic) else 0
            self.flushes[topic] = asyncio.ensure_future(self._flush(topic, delay))

    async def _flush(self, topic: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            version = self.pending.pop(topic, None)
            sockets = list(self.sockets.get(topic, ()))
            if version is None or not sockets:
                return
            viewers = {}
            keyed = []
            for consumer in sockets:
                viewer = consumer._viewer_for(topic)
                key = _viewer_key(viewer)
                viewers.setdefault(key, viewer)
                keyed.append((consumer, key))
            keys = list(viewers)
            # Every push is checked again, once per viewer (cached for LIVE_RECHECK_SECONDS).
            allowed = dict(zip(keys, await asyncio.gather(*(_allowed_now(viewers[k], topic) for k in keys)),
                               strict=True))
            text = json.dumps({"topic": topic, "version": version})
            for consumer, key in keyed:
                try:
                    if topic not in consumer.topics:
                        continue
                    if allowed[key]:
                        await consumer.send(text_data=text)
                    else:
                        await consumer.revoke(topic)
                except Exception:  # one socket closing meanwhile must not keep the push from the rest
                    logger.debug("live hub: a push to one socket failed", exc_info=True)
        finally:
            self.flushes.pop(topic, None)
        # A version that arrived while this one was being checked and sent goes out next.
        self._schedule(topic)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, TopicHub]] = weakref.WeakKeyDictionary()


def hub_for(layer) -> TopicHub:
    per_layer = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = per_layer.get(id(layer))
    if hub is None or hub.layer is not layer:
        hub = per_layer[id(layer)] = TopicHub(layer)
    return hub


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page, multiplexing topic subscriptions.

    Client sends ``{"subscribe": "approval.12", "since": 3}``; the server answers ``{"subscribed": …}``
    or ``{"refused": …}`` (the same answer for "forbidden" and "does not exist"), tells at once if the
    topic moved past ``since`` while the client was away, then pushes ``{"topic", "version"}`` whenever
    it changes. Every push is checked again: a viewer who lost access gets ``{"revoked": topic}``
    instead, and no more pushes. Bursts within LIVE_COALESCE_SECONDS reach the client as one push,
    except for topic kinds registered with ``coalesce=False`` (documents), pushed at once.
    """

    async def connect(self) -> None:
        # Anonymous sockets are accepted: each topic's check decides (only the dev inbox, when it is
        # enabled, lets anonymous viewers subscribe). A framed widget has no session cookie: its
        # embed token (?e=) speaks for its viewer.
        self.topics: set[str] = set()
        self.user = self.scope.get("user")
        # None: any topic (each one checked); a set: a socket opened with an embed token watches only
        # the topics of the one widget the token names.
        self.only_topics: frozenset[str] | None = None
        token = parse_qs(self.scope.get("query_string", b"").decode()).get("e", [""])[0]
        if token and not getattr(self.user, "is_authenticated", False):
            from widgets.embed import embed_topics, embed_viewer

            viewer = await database_sync_to_async(embed_viewer)(token)
            if viewer is None:
                await self.close(code=4401)
                return
            self.user = viewer
            self.only_topics = await database_sync_to_async(embed_topics)(token, viewer)
        if not token and not getattr(self.user, "is_authenticated", False):
            # A group board's guest: their pass (a signed cookie, not a session) speaks for them, and
            # only topic kinds that admit guests will take it (widgets.topics.register_guest_topic).
            guest = await database_sync_to_async(guest_viewer_from)(self.scope.get("cookies") or {})
            if guest is not None:
                self.user = guest
        # A card link's grant (sso.links) speaks for its recipient on its own page's topics only, and
        # only until it expires; every other topic is asked as the anonymous viewer the socket is.
        self.link_topics: dict[str, tuple] = {}
        if not getattr(self.user, "is_authenticated", False) and self.scope.get("session") is not None:
            from sso.links import socket_grants

            for user, topics, expires in await database_sync_to_async(socket_grants)(self.scope["session"]):
                self.link_topics.update({topic: (user, expires) for topic in topics})
        if self.scope.get("session") is not None:
            from widgets.topics import socket_viewers

            for viewer, topics in await database_sync_to_async(socket_viewers)(self.scope["session"]):
                for topic in topics:
                    self.link_topics.setdefault(topic, (viewer, math.inf))
        await self.accept()

    def _viewer_for(self, topic: str):
        granted = self.link_topics.get(topic)
        if granted is None:
            return self.user
        user, expires = granted
        return user if time.time() < expires else self.user

    async def disconnect(self, code: int) -> None:
        heartbeat = getattr(self, "heartbeat", None)
        if heartbeat is not None:
            heartbeat.cancel()
        for topic in list(getattr(self, "topics", set())):
            self.topics.discard(topic)
            await hub_for(self.channel_layer).leave(self, topic)
            await self._presence(topic, joined=False)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        # Channels' JSON consumer lets a bad frame raise, which closes the socket with 1011 (a
        # server error); a client's garbage is the client's error, answered like a bad topic.
        if text_data is None:
            await self.send_json({"error": "expected JSON"})
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):
            await self.send_json({"error": "expected JSON"})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict):
            await self.send_json({"error": "expected an object"})
            return
        topic = content.get("subscribe") or content.get("unsubscribe")
        if not isinstance(topic, str) or not TOPIC_RE.match(topic):
            await self.send_json({"error": "bad topic"})
            return
        if "unsubscribe" in content:
            await self._drop(topic)
            return
        if len(self.topics) >= MAX_SUBSCRIPTIONS:
            await self.send_json({"refused": topic, "reason": "too many subscriptions"})
            return
        if self.only_topics is not None and topic not in self.only_topics:
            await self.send_json({"refused": topic})  # the same answer as "forbidden" and "missing"
            return
        verdict = await database_sync_to_async(may_subscribe)(self._viewer_for(topic), topic)
        if not verdict.allowed:
            await self.send_json({"refused": topic})
            return
        self.topics.add(topic)
        await hub_for(self.channel_layer).join(self, topic)
        await self.send_json({"subscribed": topic})
        await self._presence(topic, joined=True)
        since = content.get("since")
        if isinstance(since, int) and not isinstance(since, bool):
            latest = await database_sync_to_async(current_version)(topic)
            if latest is not None and latest > since:
                await self.send_json({"topic": topic, "version": latest})

    async def _presence(self, topic: str, *, joined: bool) -> None:
        hooks = presence_hooks(topic)
        if hooks is not None:
            await database_sync_to_async(hooks[0] if joined else hooks[1])(self._viewer_for(topic), topic,
                                                                            self.channel_name)
            if joined and hooks[2] is not None and getattr(self, "heartbeat", None) is None:
                self.heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        """While this socket watches topics with presence, say so every PRESENCE_HEARTBEAT_SECONDS: a
        process that dies says nothing more, and its rows are swept."""
        while True:
            await asyncio.sleep(settings.PRESENCE_HEARTBEAT_SECONDS)
            for topic in list(self.topics):
                hooks = presence_hooks(topic)
                if hooks is not None and hooks[2] is not None:
                    await database_sync_to_async(hooks[2])(self._viewer_for(topic), topic, self.channel_name)

    async def _drop(self, topic: str) -> None:
        if topic in self.topics:
            await self._presence(topic, joined=False)
        self.topics.discard(topic)
        await hub_for(self.channel_layer).leave(self, topic)

    async def revoke(self, topic: str) -> None:
        """The viewer lost access: no more pushes of ``topic`` on this socket, and the page is told."""
        await self._drop(topic)
        await self.send_json({"revoked": topic})
