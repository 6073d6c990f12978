"""API rate limit per credential: per API token when one is used, else per signed-in user."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class CredentialRateThrottle(SimpleRateThrottle):
    """Each token has its own bucket (a leaked token cannot use its owner's other tokens' budget up),
    sessions one per user. Anonymous requests are left to the views (signed webhooks)."""

    scope = "credential"

    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches["throttle"]

    def get_rate(self) -> str | None:
        # Read at request time (DRF binds the rates at import), so settings overrides apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        token = getattr(request.auth, "key", None) if request.auth is not None else None
        ident = "token:" + hashlib.sha256(token.encode()).hexdigest()[:32] if token else f"user:{user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
