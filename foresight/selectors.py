"""Reading foresight results for people: restock suggestions and receivables at risk through
``restrict()`` (they answer the same rules as the stock and receivables they are about), and the
forecast behind a stock level the caller already got through ``restrict()``."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from foresight.models import ReceivableRisk, RestockSuggestion, SeriesForecast
from sso.authz import restrict


def open_restock_suggestions(user: Any) -> QuerySet[RestockSuggestion]:
    """Open suggestions in warehouses ``user`` may see, the items running out first on top."""
    suggestions = RestockSuggestion.objects.filter(status=RestockSuggestion.Status.OPEN)
    return restrict(suggestions, user, "inventory.view").order_by("days_of_cover", "sku", "warehouse")


def open_receivable_risks(user: Any) -> QuerySet[ReceivableRisk]:
    """Open invoices likely to be paid late that ``user`` may see, most likely first."""
    risks = ReceivableRisk.objects.filter(status=ReceivableRisk.Status.OPEN)
    return restrict(risks, user, "receivables.view").order_by("-probability", "due_date", "invoice")


def forecasts_of(levels: list[Any]) -> dict[int, SeriesForecast]:
    """The weekly demand forecasts of stock levels, one query: level pk → its forecast (when there is
    one). ``levels`` must come from a restricted query: each forecast is derived from that level's
    own item and warehouse, nothing more."""
    if not levels:
        return {}
    wanted = Q()
    for level in levels:
        wanted |= Q(connector_id=level.connector_id, sku=level.sku, warehouse=level.warehouse)
    found = {(f.connector_id, f.sku, f.warehouse): f for f in SeriesForecast.objects.filter(wanted)}
    return {level.pk: found[key] for level in levels
            if (key := (level.connector_id, level.sku, level.warehouse)) in found}


