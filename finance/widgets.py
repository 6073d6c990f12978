"""The receivables widget (``/w/receivables/<project|customer>/<name>/``): open amounts one viewer may
see, with their ageing."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from finance import selectors as finance
from widgets import charts
from widgets.topics import scope_topic, version_of
from widgets.views import render_widget, widget


def receivables_view(user: Any, scope: str, name: str) -> finance.ReceivablesSummary | None:
    if scope not in ("project", "customer"):
        return None
    rows = finance.receivables_for(user, **{scope: name})
    summary = finance.summarize(rows, timezone.localdate())
    return summary if summary.rows else None


@widget
def receivables(request: HttpRequest, scope: str, name: str, body: bool = False) -> HttpResponse:
    summary = receivables_view(request.viewer, scope, name)
    if summary is None:
        raise Http404()
    newest = max(row.updated_at for row in summary.rows)
    for total in summary.totals:
        total.ageing = charts.ageing_bar(total.buckets, total.currency)
    return render_widget(request, "receivables", {
        "title": _("Receivables: %(name)s") % {"name": name}, "summary": summary, "scope": scope, "name": name,
        "today": timezone.localdate(), "topic": scope_topic("receivables", scope, name),
        "version": version_of(newest), "body_path": f"/w/receivables/{scope}/{quote(name)}/body/",
    }, body=body)
