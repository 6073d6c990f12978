"""/readyz: every dependency this process needs, checked in parallel, each within a bound."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connections

# Checks run in threads of their own: a dependency that hangs costs this request its timeout, not
# the worker thread. A few threads are enough for a probe every few seconds.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")


def _database() -> None:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # this thread's own connection: nothing else would ever close it


def _redis() -> None:
    import redis

    timeout = settings.READYZ_TIMEOUT
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _channel_layer() -> None:
    """A message sent on a new channel of the configured layer comes back (a fresh layer instance,
    so the check neither shares nor disturbs the connections of live sockets)."""
    from channels.layers import channel_layers

    async def round_trip() -> None:
        layer = channel_layers.make_backend("default")
        try:
            channel = await layer.new_channel()
            receiving = asyncio.ensure_future(layer.receive(channel))
            # Redis pub/sub may drop a message published before the subscription is in place:
            # send again until it arrives or the check times out.
            while not receiving.done():
                await layer.send(channel, {"type": "readyz.ping"})
                await asyncio.wait({receiving}, timeout=0.1)
            if receiving.result().get("type") != "readyz.ping":
                raise RuntimeError("the channel layer returned another message")
        finally:
            if hasattr(layer, "close_pools"):
                await layer.close_pools()
            elif type(layer).__name__ == "RedisPubSubChannelLayer":
                await layer.flush()  # pub/sub flush only drops this instance's subscriptions

    asyncio.run(asyncio.wait_for(round_trip(), settings.READYZ_TIMEOUT))


def _celery_broker() -> None:
    from portal.celery import app

    timeout = settings.READYZ_TIMEOUT
    with app.connection_for_write(settings.CELERY_BROKER_URL, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)


def checks() -> dict[str, Callable[[], None]]:
    """What this deployment depends on: the database and the channel layer always; Redis and the
    Celery broker when configured."""
    found: dict[str, Callable[[], None]] = {"database": _database, "channel_layer": _channel_layer}
    if settings.REDIS_URL:
        found["redis"] = _redis
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        found["celery_broker"] = _celery_broker
    return found


def run_checks() -> dict[str, dict[str, object]]:
    """``{name: {"ok": bool, "ms": float, "error": "…"}}``, each bounded by READYZ_TIMEOUT."""
    started = time.monotonic()
    futures = {name: _pool.submit(_timed, check) for name, check in checks().items()}
    results: dict[str, dict[str, object]] = {}
    for name, future in futures.items():
        remaining = max(0.0, started + settings.READYZ_TIMEOUT + 0.1 - time.monotonic())
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            results[name] = {"ok": False, "ms": round((time.monotonic() - started) * 1000, 1), "error": "timeout"}
    return results


def _timed(check: Callable[[], None]) -> dict[str, object]:
    started = time.monotonic()
    try:
        check()
        result: dict[str, object] = {"ok": True}
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
        result = {"ok": False, "error": "timeout"}
    except Exception as exc:  # any failure means not ready; say which, never the message (it may hold a URL)
        result = {"ok": False, "error": exc.__class__.__name__}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result
