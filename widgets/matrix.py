"""Widget identity inside Matrix: the widget asks the client for an OpenID token (MSC1960, the
widget API's ``get_openid``), and the portal asks the homeserver who that token belongs to. A
``$matrix_user_id`` in the widget URL is only a hint and is never trusted.

``GET /w/matrix/?path=/w/stock/SKU-123/&widgetId=…&parentUrl=…`` is the URL pinned into a room: a
tiny page that runs the widget API (vendored matrix-widget-api), asks the client for the OpenID
token and calls ``POST /w/matrix/session`` ``{"access_token", "matrix_server_name", "path"}`` →
``{"embed_url"}``: a signed embed link to ``path`` for the portal user linked to that Matrix account
(sso.ImIdentity), which the page then opens.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sso.models import ImIdentity
from widgets.embed import make_embed_token, widget_page
from widgets.views import frameable


class OpenIdRefused(Exception):
    pass


def matrix_user_of(access_token: str, server_name: str) -> str:
    """The Matrix user id the configured homeserver vouches for, or OpenIdRefused. Only our own
    homeserver is asked, and only about its own users."""
    homeserver = settings.MATRIX_HOMESERVER_URL
    if not homeserver:
        raise OpenIdRefused("no Matrix homeserver is configured")
    try:
        response = httpx.get(
            f"{homeserver}/_matrix/federation/v1/openid/userinfo",
            params={"access_token": access_token},
            timeout=settings.MATRIX_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise OpenIdRefused(f"the homeserver could not be asked: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise OpenIdRefused("the homeserver does not know this token")
    try:
        user_id = str(response.json().get("sub", ""))
    except (ValueError, AttributeError) as exc:  # not JSON, or JSON but no object (a proxy's error page)
        raise OpenIdRefused("the homeserver's answer could not be read") from exc
    if not user_id.startswith("@") or user_id.split(":", 1)[-1] != server_name:
        raise OpenIdRefused("the token names a user of another server")
    return user_id


def _problem(status: int, title: str) -> JsonResponse:
    return JsonResponse({"title": title, "status": status}, status=status, content_type="application/problem+json")


def widget_path_error(path: str) -> str:
    """Why ``path`` is not one widget page of this portal, or "" when it is one. ``/w/`` or another
    prefix is refused: an embed link opens exactly one widget."""
    if urlsplit(path).netloc or ".." in path or widget_page(path) is None:
        return "path must be one widget page, e.g. /w/stock/SKU-123/"
    return ""


@require_GET
def bootstrap(request: HttpRequest) -> HttpResponse:
    path = request.GET.get("path", "")
    if error := widget_path_error(path):
        return frameable(_problem(400, error))
    return frameable(render(request, "widgets/matrix.html", {"path": path}))


@csrf_exempt  # authenticated by the Matrix OpenID token, not by a cookie
@require_POST
def session(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body)
        token, server_name, path = str(data["access_token"]), str(data["matrix_server_name"]), str(data["path"])
    except (ValueError, KeyError, TypeError):
        return _problem(400, "expected access_token, matrix_server_name and path")
    if error := widget_path_error(path):
        return _problem(400, error)
    try:
        user_id = matrix_user_of(token, server_name)
    except OpenIdRefused as exc:
        return _problem(401, str(exc))
    identity = ImIdentity.objects.filter(platform="matrix", external_id=user_id).select_related("user").first()
    if identity is None or not identity.user.is_active:
        return _problem(403, "this Matrix account is not linked to a portal user")
    return JsonResponse({"embed_url": f"{path}?e={make_embed_token(identity.user, path)}"})
