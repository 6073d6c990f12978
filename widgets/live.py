"""Live updates: publish a topic's new version to every open page subscribed to it.

Only ``{topic, version}`` travels; each page then fetches its own fresh render over HTTP, where
``authorize()`` runs for that viewer. So a push can never carry data its receiver may not see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


def group_name(topic: str) -> str:
    return "live." + topic


def publish(topic: str, version: int) -> None:
    """Tell subscribers of ``topic`` about ``version``, after the current transaction commits."""
    transaction.on_commit(lambda: publish_now(topic, version))


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
        async_to_sync(send_all)()
    except Exception:
        logger.exception("live publish failed", extra={"topics": len(versions)})


def publish_now(topic: str, version: int) -> None:
    pending = _grouped.get()
    if pending is not None:
        pending.pop(topic, None)  # the last version, in the order of the publishes
        pending[topic] = version
        return
    try:
        cache.set(f"live:v:{topic}", version, VERSION_TTL)
    except Exception:
        logger.exception("live version not cached", extra={"topic": topic})
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_name(topic), {"type": "live.update", "topic": topic, "version": version}
        )
    except Exception:
        # A live update is a convenience: pages also refresh on reconnect. Never fail the caller.
        logger.exception("live publish failed", extra={"topic": topic})
