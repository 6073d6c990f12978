"""Test settings: the production settings with the dev inbox and the demo ERP switched on."""

import os

os.environ.setdefault("DEV_INBOX_ENABLED", "1")
os.environ.setdefault("DEMO_ERP_ENABLED", "1")
os.environ.setdefault("PORTAL_BASE_URL", "http://testserver")

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
# Rate-limit buckets are per process and outlive a test: off by default so tests do not wait on each
# other's sends; tests/test_ratelimit.py (and any test that wants them) sets IM_RATE_LIMITS itself.
IM_RATE_LIMITS = {}

# Parallel test processes (pytest-xdist) share one Redis: each gets its own channel-layer and cache
# prefix, so a page subscribed in one process never receives another process's pushes.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and REDIS_URL:  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] += f"-{_worker}"  # noqa: F405
    for _cache in CACHES.values():  # noqa: F405
        if "KEY_PREFIX" in _cache:
            _cache["KEY_PREFIX"] += f"-{_worker}"
