"""What each widget shows, for one viewer. Every query goes through the apps' own selectors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString

from approvals import selectors as approvals
from finance import selectors as finance
from foresight import selectors as foresight
from inventory import selectors as inventory
from inventory.models import SalesOrder, StockLevel, StockMove
from widgets import charts

HISTORY_WEEKS = 8  # how far back the stock chart looks, and how far its projection looks ahead


@dataclass
class StockView:
    sku: str
    name: str
    unit: str
    levels: list[StockLevel]
    moves: list[StockMove]
    charts: list[tuple[StockLevel, SafeString]] = field(default_factory=list)

    @property
    def total(self):
        return sum((level.quantity for level in self.levels), start=0)


@dataclass(frozen=True)
class VisibleStock:
    """The stock levels of one item that a viewer may see, with their forecasts: all a stock widget
    shows derives from these (its fragment key names them)."""

    sku: str
    levels: list[StockLevel]
    forecasts: dict[int, Any]

    def fingerprint(self) -> tuple:
        """What the widget's rendering depends on: each row's version, each forecast's fit, today."""
        return (self.sku, timezone.localdate(),
                tuple((level.pk, level.version, level.updated_at) for level in self.levels),
                tuple(sorted((pk, f.pk, f.run_id, f.fitted_at) for pk, f in self.forecasts.items())))


def item_stock(user: Any, sku: str) -> VisibleStock | None:
    """Two queries whatever the number of warehouses: the levels through ``restrict()``, their forecasts."""
    levels = list(inventory.stock_of_item(user, sku))
    if not levels:
        return None  # nothing visible and nothing there look the same
    return VisibleStock(sku, levels, foresight.forecasts_of(levels))


def stock_view(visible: VisibleStock) -> StockView:
    """The widget's content for levels already restricted: recent moves and one chart per warehouse,
    two queries whatever the number of warehouses."""
    levels = visible.levels
    moves = list(StockMove.objects.filter(stock__in=levels).select_related("stock")[:8])
    since = timezone.now() - dt.timedelta(weeks=HISTORY_WEEKS)
    history: dict[int, list[tuple[dt.datetime, Any]]] = {level.pk: [] for level in levels}
    for stock_id, at, quantity in (StockMove.objects.filter(stock__in=levels, at__gte=since)
                                   .order_by("at").values_list("stock_id", "at", "quantity")):
        history[stock_id].append((at, quantity))
    charts = [(level, _stock_chart(level, history[level.pk], visible.forecasts.get(level.pk))) for level in levels]
    return StockView(sku=visible.sku, name=levels[0].name, unit=levels[0].unit, levels=levels, moves=moves,
                     charts=[(level, chart) for level, chart in charts if chart])


def _stock_chart(level: StockLevel, moves: list[tuple[dt.datetime, Any]], forecast: Any) -> SafeString:
    """Available stock of one warehouse over the last weeks (from its moves; today's reservations
    are taken as they are now) and, when the demand forecast exists, where it is heading."""
    reserved = float(level.reserved)
    by_day = {timezone.localtime(at).date(): float(quantity) - reserved for at, quantity in moves}  # last of a day
    by_day[timezone.localdate()] = float(level.available)
    history = sorted(by_day.items())
    projection = (
        charts.project_stock(float(level.available), forecast.forecast, forecast.sigma, timezone.localdate(),
                             weeks=HISTORY_WEEKS)
        if forecast is not None and forecast.forecast else []
    )
    if len(history) < 2 and not projection:
        return charts.NOTHING  # one day is not a picture; the table says it already
    return charts.stock_chart(history, projection, float(level.safety_level), level.unit)


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
