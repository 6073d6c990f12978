"""Reading foresight results for people: restock suggestions and receivables at risk through
``restrict()`` (they answer the same rules as the stock and receivables they are about), and the
forecast behind a stock level the caller already got through ``restrict()``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

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


def forecast_of(level: Any) -> SeriesForecast | None:
    """The weekly demand forecast of a stock level. ``level`` must come from a restricted query:
    the forecast is derived from that level's own item and warehouse, nothing more."""
    return SeriesForecast.objects.filter(connector_id=level.connector_id, sku=level.sku,
                                         warehouse=level.warehouse).first()
