"""Widget pages: small mini-app pages for IM webviews and iframes, each with a body partial that the
page refetches when its live topic changes. Thin: the data comes from ``widgets.selectors``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from approvals.views import panel_context
from widgets import charts, fragments, selectors
from widgets.embed import embed_viewer
from widgets.topics import scope_topic, version_of


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


def _src(request: HttpRequest, path: str) -> str:
    return f"{path}?e={quote(request.embed_token)}" if request.embed_token else path


def _render(request: HttpRequest, template: str, context: dict, *, body: bool, key: str = "",
            content: Callable[[], dict] | None = None) -> HttpResponse:
    """The widget page, or its ``body/`` partial for live refetches. With a ``key`` (widgets.fragments:
    everything the body shows) the body is rendered once per key and a refetch of what the client
    shows already is answered 304; ``content`` then adds what only a render needs."""
    context = {**context, "embed_token": request.embed_token, "viewer": request.viewer}
    context["live_src"] = _src(request, context["body_path"])
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


@widget
def stock(request: HttpRequest, sku: str, body: bool = False) -> HttpResponse:
    visible = selectors.item_stock(request.viewer, sku)
    if visible is None:
        raise Http404()
    newest = max(level.updated_at for level in visible.levels)
    return _render(request, "stock", {
        "title": _("Stock of %(name)s") % {"name": visible.levels[0].name},
        "topic": f"item.{sku}", "version": version_of(newest), "body_path": f"/w/stock/{sku}/body/",
    }, body=body, key=repr(visible.fingerprint()), content=lambda: {"stock": selectors.stock_view(visible)})


@widget
def order(request: HttpRequest, number: str, body: bool = False) -> HttpResponse:
    found = selectors.order_view(request.viewer, number)
    if found is None:
        raise Http404()
    return _render(request, "order", {
        "title": _("Order %(number)s") % {"number": found.external_id}, "order": found,
        "timeline": list(found.timeline.all()), "topic": f"order.{found.pk}", "version": found.version,
        "body_path": f"/w/order/{number}/body/",
    }, body=body)


@widget
def receivables(request: HttpRequest, scope: str, name: str, body: bool = False) -> HttpResponse:
    summary = selectors.receivables_view(request.viewer, scope, name)
    if summary is None:
        raise Http404()
    newest = max(row.updated_at for row in summary.rows)
    for total in summary.totals:
        total.ageing = charts.ageing_bar(total.buckets, total.currency)
    return _render(request, "receivables", {
        "title": _("Receivables: %(name)s") % {"name": name}, "summary": summary, "scope": scope, "name": name,
        "today": timezone.localdate(), "topic": scope_topic("receivables", scope, name),
        "version": version_of(newest), "body_path": f"/w/receivables/{scope}/{quote(name)}/body/",
    }, body=body)


@widget
def approval(request: HttpRequest, pk: int, body: bool = False) -> HttpResponse:
    context = panel_context(request.viewer, pk)
    if context is None:
        raise Http404()
    document = context["document"]
    return _render(request, "approval", {
        **context, "title": document.title, "topic": document.topic, "version": document.version,
        "body_path": f"/w/approval/{pk}/body/",
    }, body=body, key=context["fragment_key"])


@widget
def pending(request: HttpRequest, body: bool = False) -> HttpResponse:
    return _render(request, "pending", {
        "title": _("My pending approvals"), "page": (page := selectors.pending_view(request.viewer)),
        "pending": page.documents,
        "topic": f"inbox.{request.viewer.pk}", "version": 0, "body_path": "/w/pending/body/",
    }, body=body)
