"""What a platform has accepted but the outbox has not recorded yet (write-ahead, in Redis).

A batch's outcomes are recorded in one transaction after its last send (a constant number of queries
per batch). A worker killed in between would leave cards the platform accepted still queued, and the
next sender would post them again. So each accepted send is noted here at once (one Redis SET, no
query), and a sender that claims such a row records it as sent instead of sending it again. Without
Redis (the embedded default: tasks run in the request) there is no worker to lose and nothing is noted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEEP_SECONDS = 7 * 24 * 3600  # longer than any lease and retry of the row it speaks for


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _key(delivery_id: int) -> str:
    # The deployment's namespace in Redis (the rate buckets' prefix), so side-by-side portals never meet.
    return f"{settings.IM_RATE_LIMIT_PREFIX}:accepted:{delivery_id}"


def note(delivery_id: int, address: str, message_id: str, recall_id: str) -> None:
    """The platform accepted this row's card (before the batch records it)."""
    if not settings.REDIS_URL:
        return
    try:
        _client(settings.REDIS_URL).set(_key(delivery_id), json.dumps([address, message_id, recall_id]),
                                        ex=KEEP_SECONDS)
    except redis.RedisError:  # the record at the batch's end still follows; only a crash meanwhile risks a repeat
        logger.warning("delivery %s: could not note its accepted send", delivery_id, exc_info=True)


def noted(delivery_ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """{row id: (address, message id, recall id)} of the rows a platform accepted before a crash."""
    ids = list(delivery_ids)
    if not settings.REDIS_URL or not ids:
        return {}
    try:
        values = _client(settings.REDIS_URL).mget([_key(pk) for pk in ids])
    except redis.RedisError:
        logger.warning("could not read accepted sends; the platform's idempotency key is all that is left",
                       exc_info=True)
        return {}
    return {pk: tuple(json.loads(value)) for pk, value in zip(ids, values, strict=True) if value}


def forget(delivery_ids: Iterable[int]) -> None:
    """Recorded in the outbox: the notes are no longer needed."""
    ids = list(delivery_ids)
    if not settings.REDIS_URL or not ids:
        return
    with contextlib.suppress(redis.RedisError):  # they expire on their own
        _client(settings.REDIS_URL).delete(*[_key(pk) for pk in ids])
