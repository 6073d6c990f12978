"""Per-platform rate limits: token buckets shared by every worker through Redis.

``acquire(platform, scope)`` takes one token from the bucket of (platform, scope) and returns 0, or
returns how many seconds until a token is free (taking nothing). ``im.services.send_delivery`` asks
before sending and, when the bucket is empty, puts the delivery back in the outbox for that long: a
burst is spread over time instead of failing with the platform's 429.

Buckets come from ``settings.IM_RATE_LIMITS``: ``{"slack": {"rate": 1, "burst": 1, "scope":
"recipient"}}`` — ``rate`` tokens per second, at most ``burst`` saved up, one bucket per recipient
(a Slack DM channel, a Feishu chat, a WeCom member) or one per platform (``"scope": "platform"``).
With ``REDIS_URL`` the buckets live in Redis (one Lua script: atomic, with Redis's own clock, so
every process shares them); without it (demo, unit tests) in this process.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from typing import Any

from django.conf import settings

# KEYS[1] the bucket; ARGV rate (tokens/s), burst. Returns the wait in seconds as a string (Lua
# numbers come back as integers otherwise). The clock is Redis's, so workers on hosts with skewed
# clocks still agree.
LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return tostring(wait)
"""


def limit_for(platform: str) -> dict[str, Any] | None:
    limit = settings.IM_RATE_LIMITS.get(platform)
    if not limit or float(limit.get("rate", 0)) <= 0:
        return None
    return limit


def bucket_key(platform: str, scope: str) -> str:
    # Hashed: addresses may be long or contain characters that are awkward in keys.
    digest = hashlib.sha256(scope.encode()).hexdigest()[:24] if scope else "all"
    return f"{settings.IM_RATE_LIMIT_PREFIX}:{platform}:{digest}"


class RedisBuckets:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(LUA)

    def take(self, key: str, rate: float, burst: float) -> float:
        return float(self._script(keys=[key], args=[rate, burst]))


class LocalBuckets:
    """The same algorithm in this process (no Redis): for the demo and unit tests."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: float) -> float:
        with self._lock:
            now = time.monotonic()
            tokens, ts = self._state.get(key, (burst, now))
            tokens = min(burst, tokens + max(0.0, now - ts) * rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / rate
            self._state[key] = (tokens, now)
            return wait

    def clear(self) -> None:
        with self._lock:
            self._state.clear()


_buckets: dict[str, RedisBuckets | LocalBuckets] = {}
_buckets_lock = threading.Lock()


def buckets() -> RedisBuckets | LocalBuckets:
    url = settings.REDIS_URL
    with _buckets_lock:
        if url not in _buckets:
            _buckets[url] = RedisBuckets(url) if url else LocalBuckets()
        return _buckets[url]


def acquire(platform: str, scope: str) -> float:
    """0 when a message to ``scope`` on ``platform`` may go now (a token was taken), else the seconds
    to wait. A Redis outage does not stop deliveries: the platform's own 429 still protects us."""
    limit = limit_for(platform)
    if limit is None:
        return 0.0
    rate, burst = float(limit["rate"]), max(1.0, float(limit.get("burst", 1)))
    key = bucket_key(platform, "" if limit.get("scope") == "platform" else scope)
    try:
        wait = buckets().take(key, rate, burst)
    except Exception:  # redis.RedisError and connection errors; never fail a delivery on the limiter
        import logging

        logging.getLogger(__name__).warning("rate limiter unavailable; sending without it", exc_info=True)
        return 0.0
    if wait <= 0:
        return 0.0
    # A little jitter, so deliveries that were told the same wait do not all come back at once.
    return wait + random.random() / rate
