"""The approval widgets: one document (``/w/approval/<pk>/``, its decision panel) and what waits for the
viewer (``/w/pending/``)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from approvals import selectors as approvals
from approvals.views import panel_context
from widgets.views import render_widget, widget


def pending_view(user: Any) -> approvals.PendingPage:
    """The first 20 of what waits for ``user`` (the same selector as the bot and /approvals/)."""
    return approvals.pending_page(user, 20)


@widget
def approval(request: HttpRequest, pk: int, body: bool = False) -> HttpResponse:
    context = panel_context(request.viewer, pk)
    if context is None:
        raise Http404()
    document = context["document"]
    return render_widget(request, "approval", {
        **context, "title": document.title, "topic": document.topic, "version": document.version,
        "body_path": f"/w/approval/{pk}/body/",
    }, body=body, key=context["fragment_key"])


@widget
def pending(request: HttpRequest, body: bool = False) -> HttpResponse:
    return render_widget(request, "pending", {
        "title": _("My pending approvals"), "page": (page := pending_view(request.viewer)),
        "pending": page.documents,
        "topic": f"inbox.{request.viewer.pk}", "version": 0, "body_path": "/w/pending/body/",
    }, body=body)
