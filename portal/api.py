"""API errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.views import exception_handler

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str = "", **extra) -> JsonResponse:
    return JsonResponse(problem_body(status, title, detail, **extra), status=status, content_type=PROBLEM,
                        json_dumps_params={"ensure_ascii": False})


def problem_body(status: int, title: str, detail: str = "", **extra) -> dict:
    """The members of an RFC 9457 problem (also written by the intake's lean route, erp/asgi.py)."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    detail = data.get("detail") if isinstance(data, dict) else None
    body = {
        "type": "about:blank",
        "title": str(detail) if detail else response.status_text,
        "status": response.status_code,
    }
    if not detail:
        body["errors"] = data
    response.data = body
    response.content_type = PROBLEM
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """An unknown /api/ URL answers problem+json like the rest of the API; pages keep Django's 404."""
    if _is_api(request):
        return problem(404, "Not found", f"no API endpoint at {request.path}")
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many
    fields): under /api/ a problem+json 400 like every other API refusal; pages keep Django's 400."""
    if _is_api(request):
        return problem(400, "Bad request", "the request could not be read (too large or malformed)")
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem(500, "Server error", "the error was logged; retrying later may help")
    return defaults.server_error(request)
