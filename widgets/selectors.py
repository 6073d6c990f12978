"""What each widget shows, for one viewer. Every query goes through the apps' own selectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from approvals import selectors as approvals
from finance import selectors as finance
from inventory import selectors as inventory
from inventory.models import SalesOrder, StockLevel, StockMove


@dataclass
class StockView:
    sku: str
    name: str
    unit: str
    levels: list[StockLevel]
    moves: list[StockMove]

    @property
    def total(self):
        return sum((level.quantity for level in self.levels), start=0)


def stock_view(user: Any, sku: str) -> StockView | None:
    levels = list(inventory.stock_of_item(user, sku))
    if not levels:
        return None  # nothing visible and nothing there look the same
    moves = list(StockMove.objects.filter(stock__in=levels).select_related("stock")[:8])
    return StockView(sku=sku, name=levels[0].name, unit=levels[0].unit, levels=levels, moves=moves)


def order_view(user: Any, number: str) -> SalesOrder | None:
    return inventory.order_for(user, number)


def receivables_view(user: Any, scope: str, name: str) -> finance.ReceivablesSummary | None:
    if scope not in ("project", "customer"):
        return None
    rows = finance.receivables_for(user, **{scope: name})
    summary = finance.summarize(rows, timezone.localdate())
    return summary if summary.rows else None


def pending_view(user: Any) -> approvals.PendingPage:
    """The first 20 of what waits for ``user`` (the same selector as the bot and /approvals/)."""
    return approvals.pending_page(user, 20)


def visible_stock(user: Any, pk: int) -> StockLevel | None:
    return inventory.stock_levels(user).filter(pk=pk).first()
