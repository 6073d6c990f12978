from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from portal.observability.readiness import run_checks


@require_GET
@cache_control(public=True, max_age=7 * 24 * 3600)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico: answer with the vendored icon, not a 404 per page."""
    found = finders.find("portal/favicon.ico")
    if not found:
        raise Http404()
    return HttpResponse(Path(found).read_bytes(), content_type="image/x-icon")


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
