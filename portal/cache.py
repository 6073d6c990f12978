"""The Redis cache, cleared by its own keys only.

Django's ``RedisCache.clear()`` is ``FLUSHDB``: on a Redis database shared with the Celery broker and the
channel layer (one ``REDIS_URL``), clearing the cache would drop queued tasks, channel groups, rate-limit
buckets and the accepted-send notes. Here ``clear()`` deletes only the keys under this cache's
``KEY_PREFIX`` (``SCAN`` + ``UNLINK`` in batches); without a prefix it keeps Django's ``FLUSHDB``.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache

SCAN_BATCH = 500


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class PrefixedRedisCache(RedisCache):
    def clear(self) -> bool:
        if not self.key_prefix:
            return super().clear()
        client = self._cache.get_client(write=True)
        pattern = _glob_escape(self.key_prefix) + ":*"
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        return True
