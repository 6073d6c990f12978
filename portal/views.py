from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from portal.observability.readiness import run_checks


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. No dependency is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every configured dependency answers (database, channel layer, Redis, Celery broker),
    each within READYZ_TIMEOUT; 503 names the ones that did not."""
    checks = run_checks()
    failed = sorted(name for name, result in checks.items() if not result["ok"])
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks},
        status=503 if failed else 200,
    )
