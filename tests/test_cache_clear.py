"""Clearing the cache leaves the rest of a shared Redis database alone (portal/cache.py)."""

from __future__ import annotations

import uuid

import pytest

from portal.cache import PrefixedRedisCache


@pytest.mark.services
def test_clear_deletes_only_this_caches_keys(redis_url):
    import redis

    prefix = f"test-cache-{uuid.uuid4().hex}"
    cache = PrefixedRedisCache(redis_url, {"KEY_PREFIX": prefix})
    neighbour = PrefixedRedisCache(redis_url, {"KEY_PREFIX": prefix + "-other"})
    client = redis.Redis.from_url(redis_url)
    foreign = f"{prefix}-celery-queue"  # a broker's or a rate limiter's key in the same database
    client.set(foreign, "1")
    try:
        cache.set_many({f"k{i}": i for i in range(1200)})  # more than one SCAN batch
        neighbour.set("kept", "yes")
        assert cache.get("k7") == 7

        assert cache.clear() is True

        assert cache.get("k7") is None and cache.get("k1199") is None
        assert not list(client.scan_iter(match=f"{prefix}:*"))
        assert neighbour.get("kept") == "yes"
        assert client.get(foreign) == b"1"
    finally:
        client.delete(foreign)
        neighbour.clear()
