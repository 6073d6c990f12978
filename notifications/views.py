"""The manager's bulk approval page: many similar small requests at once, each decided on its own.

Nothing is ticked when the page opens; ticking shows the count and total (bulk.js), and the button
leads to a confirmation step, rendered by the server, that names the count and the total of what
will be decided. Only the confirmed form decides."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from approvals.services import bulk_decide
from notifications.selectors import bulk_candidates, bulk_selection, totals_by_currency
from portal import formatting


def _total_text(documents: list) -> str:
    return " + ".join(formatting.money(total, currency) for currency, total in totals_by_currency(documents)) or (
        formatting.money(0, "CNY"))


INVALID_AMOUNT = object()


def _amount_limit(text: str) -> Decimal | None | object:
    """The "amount at most" filter: None when empty, else a finite Decimal, else INVALID_AMOUNT."""
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return INVALID_AMOUNT
    # NaN and Infinity parse as Decimals but are no limit at all (and NaN cannot be compared).
    if not amount.is_finite() or abs(amount) >= Decimal("1e14"):
        return INVALID_AMOUNT
    return amount


@login_required
@require_http_methods(["GET", "POST"])
def bulk_approve(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    max_amount = _amount_limit(request.GET.get("max_amount", ""))
    if max_amount is INVALID_AMOUNT:
        # The page again with the filter as typed and why (a 400 page of its own, in the page's language
        # and charset): a typo in a filter is not a dead end.
        return render(request, "notifications/bulk.html", {
            "documents": [], "results": [], "batch": uuid.uuid4().hex, "kind": kind,
            "max_amount": request.GET["max_amount"][:40], "amount_error": _("The amount limit must be a number."),
            "nothing": formatting.money(0, "CNY"),
        }, status=400)
    results, confirm = [], None
    if request.method == "POST":
        ids = [int(v) for v in request.POST.getlist("document") if v.isdigit()]
        outcome = "rejected" if request.POST.get("outcome") == "rejected" else "approved"
        # The batch id comes from the form, so a re-submitted form replays instead of deciding twice.
        batch = (request.POST.get("batch") or uuid.uuid4().hex)[:40]
        comment = request.POST.get("comment", "")
        if request.POST.get("confirmed") == "1":
            results = bulk_decide(request.user, ids, outcome, batch=batch, comment=comment)
        else:
            selected = bulk_selection(request.user, ids)
            if not selected:
                messages.warning(request, _("Tick at least one request first."))
            else:
                confirm = {"documents": selected, "count": len(selected), "total": _total_text(selected),
                           "outcome": outcome, "batch": batch, "comment": comment}
    documents = list(bulk_candidates(request.user, kind=kind, max_amount=max_amount)[:200])
    return render(request, "notifications/confirm_bulk.html" if confirm else "notifications/bulk.html", {
        "documents": documents, "results": results, "batch": uuid.uuid4().hex, "confirm": confirm,
        "kind": kind, "max_amount": max_amount or "", "nothing": formatting.money(0, "CNY"),
    })
