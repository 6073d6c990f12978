"""What every widget page shares: small mini-app pages for IM webviews and iframes, each with a body
partial that the page refetches when its live topic changes. The pages themselves belong to the apps
whose data they show (``inventory.widgets``, ``finance.widgets``, ``approvals.widgets``), which register
them here in ``ready()``; ``widgets.urls`` serves what is registered, under ``/w/``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from widgets import fragments
from widgets.embed import embed_viewer

# (route under /w/, view, URL name): each page is also served at ``<route>body/`` (name ``<name>-body``).
WIDGET_PAGES: list[tuple[str, Callable[..., HttpResponse], str]] = []


def register_widget_page(route: str, view: Callable[..., HttpResponse], name: str) -> None:
    """Serve ``view`` at ``/w/<route>`` and its live body at ``/w/<route>body/`` (``reverse("widgets:<name>")``)."""
    WIDGET_PAGES[:] = [page for page in WIDGET_PAGES if page[2] != name] + [(route, view, name)]


def widget(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the viewer (session, or the embed token bound to this widget), render, and allow
    framing only by the configured IM origins."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = request.GET.get("e", "")
        if token:
            viewer = embed_viewer(token, request.path)
            if viewer is None:
                response = render(request, "widgets/expired.html", status=403)
                return frameable(response)
        elif request.user.is_authenticated:
            viewer = request.user
        else:
            return redirect_to_login(request.get_full_path())
        request.viewer = viewer
        request.embed_token = token
        return frameable(view(request, *args, **kwargs))

    return require_GET(wrapped)


def frameable(response: HttpResponse) -> HttpResponse:
    ancestors = settings.WIDGET_FRAME_ANCESTORS or ["'none'"]
    response._csp_replace = {"frame-ancestors": ancestors}
    response.xframe_options_exempt = True
    return response


def src(request: HttpRequest, path: str) -> str:
    return f"{path}?e={quote(request.embed_token)}" if request.embed_token else path


def render_widget(request: HttpRequest, template: str, context: dict, *, body: bool, key: str = "",
            content: Callable[[], dict] | None = None) -> HttpResponse:
    """The widget page, or its ``body/`` partial for live refetches. With a ``key`` (widgets.fragments:
    everything the body shows) the body is rendered once per key and a refetch of what the client
    shows already is answered 304; ``content`` then adds what only a render needs."""
    context = {**context, "embed_token": request.embed_token, "viewer": request.viewer}
    context["live_src"] = src(request, context["body_path"])
    body_template = f"widgets/{template}_body.html"
    if key:
        key = context["live_etag"] = fragments.fragment_key(template, key, context["live_src"])

    def render_body() -> str:
        return render_to_string(body_template, {**context, **(content() if content else {})}, request)

    if key:
        if body:
            return fragments.respond(request, key, lambda: fragments.cached_html(key, render_body))
        return render(request, "widgets/page.html", {**context, "body_html": fragments.cached_html(key, render_body)})
    if body:
        return HttpResponse(render_body())
    return render(request, "widgets/page.html", {**context, "body_html": render_body()})
