"""Pages of their own for planners (restock suggestions) and finance (receivables at risk): what the
cards announce one at a time, as one list, each row with its picture. Thin: the rows come from
``foresight.selectors`` (``restrict()``), the words from ``foresight.cards``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from foresight import selectors
from foresight.cards import describe_reason
from widgets import charts

PAGE_ROWS = 50  # the most urgent first; a phone page, not an export


@login_required
@require_GET
def restock(request: HttpRequest) -> HttpResponse:
    suggestions = list(selectors.open_restock_suggestions(request.user)[:PAGE_ROWS])
    rows = [{"s": s, "bar": charts.cover_bar(float(s.position), float(s.reorder_point), float(s.quantity))}
            for s in suggestions]
    return render(request, "foresight/restock.html", {"rows": rows})


@login_required
@require_GET
def risks(request: HttpRequest) -> HttpResponse:
    risks = list(selectors.open_receivable_risks(request.user)[:PAGE_ROWS])
    rows = [{"r": r, "bar": charts.probability_bar(r.probability), "reasons": [describe_reason(x) for x in r.reasons]}
            for r in risks]
    return render(request, "foresight/risks.html", {"rows": rows})
