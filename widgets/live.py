"""Live updates: publish a topic's new version to every open page subscribed to it.

Only ``{topic, version}`` travels; each page then fetches its own fresh render over HTTP, where
``authorize()`` runs for that viewer. So a push can never carry data its receiver may not see.
"""

from __future__ import annotations

import logging

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


def publish_now(topic: str, version: int) -> None:
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
