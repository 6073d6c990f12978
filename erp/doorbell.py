"""The workers' doorbell: at most one event-handling task waiting in the broker's queue.

A handling task claims every event still ``received`` (erp/handling.py), not the ids it was queued for,
so one task waiting is enough for all the events stored before it starts. Telling the workers once per
stored group made about one task per event at a steady 100 events/s: most found nothing left to claim,
yet each cost a Celery publish in Daphne and a task, a transaction and a claim in a pool process.

- ``ring()``: after events committed, the caller queues a task only if nobody rang since the last task
  started (one ``SET NX EX`` on the broker's Redis).
- ``answer()``: a handling task, before it claims, so that events stored from then on ring again.

Why nothing stored waits: an event committed before ``ring()``; a ring that finds the bell already rung
means a task queued and not yet started, whose claim comes after its ``answer()`` and so sees the event.
A claim that comes back full rings again (more may be waiting). A task lost with the bell rung (a
broker restart) only silences the bell until it expires (``RING_SECONDS``); the safety net queues what
is still received after ``STALE_AFTER`` in any case (erp/requeue.py).

The bell lives beside the queue it speaks for (the broker's Redis, a key named after the queue and the
deployment's cache prefix), so a test that publishes to a private broker rings the bell its worker
answers. With a broker that is not Redis (the in-process default never rings) every ring queues a task.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# How long a rung bell stays rung with nobody answering (a task lost with the broker, a long queue).
RING_SECONDS = 5


@lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _bell() -> tuple[redis.Redis, str] | None:
    from portal.celery import app

    url = str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return _client(url), f"{prefix}:{app.conf.task_default_queue}:erp-handling-doorbell"


def ring() -> bool:
    """Whether to queue a handling task now: True unless one is already waiting. Redis not answering
    is True (the publish that follows finds out whether the broker is down)."""
    bell = _bell()
    if bell is None:
        return True
    client, key = bell
    try:
        return bool(client.set(key, b"1", nx=True, ex=RING_SECONDS))
    except redis.RedisError:
        return True


def answer() -> None:
    """A handling task starts: the events stored from now on are not its to see for sure, so they ring."""
    bell = _bell()
    if bell is None:
        return
    client, key = bell
    try:
        client.delete(key)
    except redis.RedisError:  # the bell expires by itself
        logger.warning("could not answer the handling doorbell", exc_info=True)
