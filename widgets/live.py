"""Live updates: publish a topic's new version to every open page subscribed to it.

Only ``{topic, version}`` travels; each page then fetches its own fresh render over HTTP, where
``authorize()`` runs for that viewer. So a push can never carry data its receiver may not see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


def group_name(topic: str) -> str:
    return "live." + topic


# Seconds a publish from sync code may take before it is given up (logged; pages refetch on reconnect).
PUBLISH_TIMEOUT = 5.0

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for publishing from sync code where no loop runs (a Celery worker),
    started once. ``async_to_sync`` there made a new loop per call, and the Redis channel layer, which
    keeps its connection per loop, a new connection per publish (a worker handling one event at a time
    paid about 1 ms of CPU per publish for it)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked pool process starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def _run_sync(layer: Any, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run a publish coroutine to its end from sync code."""
    local = SyncToAsync.threadlocal  # set in the threads Daphne runs sync code in: its server loop
    server_loop = getattr(local, "main_event_loop", None) is not None and getattr(
        local, "main_event_loop_pid", None) == os.getpid()
    # The in-memory layer's queues belong to the loop of its consumers (the demo's, a test's), and a
    # thread of Daphne's has the server's loop, which async_to_sync uses: only elsewhere (a worker) is
    # the publisher loop used.
    if server_loop or isinstance(layer, InMemoryChannelLayer):
        async_to_sync(make)()
        return
    asyncio.run_coroutine_threadsafe(make(), _publisher_loop()).result(PUBLISH_TIMEOUT)


def publish(topic: str, version: int) -> None:
    """Tell subscribers of ``topic`` about ``version``, after the current transaction commits.

    Publishes made at the same savepoint level one after another leave together, one per topic with
    its last version: a transaction that moves stock thirty times pushes once, not thirty times
    spread over the time the commit hooks take (which on a loaded machine outlasts the coalescing
    window of the pages)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and _join_last_hook(connection, topic, version):
        return
    transaction.on_commit(_PublishAfterCommit({topic: version}))


class _PublishAfterCommit:
    """An on-commit hook carrying the last version of each topic published at its savepoint level."""

    def __init__(self, versions: dict[str, int]) -> None:
        self.versions = versions

    def add(self, topic: str, version: int) -> None:
        _keep_last(self.versions, topic, version)

    def __call__(self) -> None:
        if len(self.versions) == 1 or _grouped.get() is not None:
            for topic, version in self.versions.items():
                publish_now(topic, version)
        else:
            publish_many(self.versions)


def _join_last_hook(connection, topic: str, version: int) -> bool:
    """Add to the last on-commit hook when it is ours and was registered at this very savepoint
    level: a rolled-back savepoint then drops exactly what it dropped before, and the hooks
    registered in between keep their order."""
    hooks = getattr(connection, "run_on_commit", None)
    if not hooks:
        return False
    last = hooks[-1]
    if not (isinstance(last, tuple) and len(last) == 3 and isinstance(last[1], _PublishAfterCommit)):
        return False
    if last[0] != set(connection.savepoint_ids):
        return False
    last[1].add(topic, version)
    return True


VERSION_TTL = 7 * 24 * 3600


def current_version(topic: str) -> int | None:
    """The last version published for ``topic`` (shared cache), for clients coming back."""
    return cache.get(f"live:v:{topic}")


# Inside ``grouped()``: the publishes waiting to leave together, the last version per topic.
_grouped: ContextVar[dict[str, int] | None] = ContextVar("live_grouped", default=None)


@contextlib.contextmanager
def grouped() -> Iterator[None]:
    """Publishes made inside this block (after their commits) leave together at its end: one cache
    write and one crossing into the event loop for the lot, not one per topic (a worker handling a
    batch of events published about four per event, each through asgiref's sync→async bridge). A
    topic published twice is sent once, with its last version."""
    pending: dict[str, int] = {}
    token = _grouped.set(pending)
    try:
        yield
    finally:
        _grouped.reset(token)
        if pending:
            publish_many(pending)


def publish_many(versions: dict[str, int]) -> None:
    """``publish_now`` for several topics at once."""
    try:
        cache.set_many({f"live:v:{topic}": version for topic, version in versions.items()}, VERSION_TTL)
    except Exception:
        logger.exception("live versions not cached", extra={"topics": len(versions)})
    layer = get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        results = await asyncio.gather(*(
            layer.group_send(group_name(topic), {"type": "live.update", "topic": topic, "version": version})
            for topic, version in versions.items()), return_exceptions=True)
        for topic, result in zip(versions, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("live publish failed", exc_info=result, extra={"topic": topic})

    try:
        _run_sync(layer, send_all)
    except Exception:
        logger.exception("live publish failed", extra={"topics": len(versions)})


def publish_now(topic: str, version: int) -> None:
    pending = _grouped.get()
    if pending is not None:
        _keep_last(pending, topic, version)
        return
    try:
        cache.set(f"live:v:{topic}", version, VERSION_TTL)
    except Exception:
        logger.exception("live version not cached", extra={"topic": topic})
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async def send_one() -> None:
            await layer.group_send(group_name(topic), {"type": "live.update", "topic": topic, "version": version})

        _run_sync(layer, send_one)
    except Exception:
        # A live update is a convenience: pages also refresh on reconnect. Never fail the caller.
        logger.exception("live publish failed", extra={"topic": topic})


def _keep_last(versions: dict[str, int], topic: str, version: int) -> None:
    """The topic's last version, placed in the order of the publishes."""
    versions.pop(topic, None)
    versions[topic] = version
