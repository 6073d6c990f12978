from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse


class NoStoreMiddleware:
    """Every page and API answer may carry personal or business data (a document, a balance, a name):
    no browser cache, shared proxy or back button keeps a copy. ``Cache-Control: private, no-store``
    unless the response already forbids storing; static files (served by WhiteNoise before this runs,
    or under ``STATIC_URL``) and the liveness probe are left alone."""

    EXEMPT = ("/healthz",)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path
        if path in self.EXEMPT or (settings.STATIC_URL and path.startswith(settings.STATIC_URL)):
            return response
        if "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "private, no-store"
        return response


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached right now (connection refused, the pool exhausted under load)
    answers 503 with Retry-After instead of a 500: ERPs, IM platforms and load balancers treat that as
    "come back later", and an event the ERP retries is de-duplicated by its webhook id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        from portal.api import problem

        if request.path.startswith("/api/"):
            response = problem(503, "Service unavailable", "the database cannot be reached right now; retry later")
        else:
            # A page says what to do, in the reader's language (LocaleMiddleware has chosen it), and
            # offers the same URL again: a card link is not spent by a request that failed.
            from django.template.loader import render_to_string

            html = render_to_string("unavailable.html", {"retry_url": request.get_full_path()})
            response = HttpResponse(html, status=503)
        response["Retry-After"] = str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS)
        return response
