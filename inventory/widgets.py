"""The stock and order widgets (``/w/stock/<sku>/``, ``/w/order/<number>/``): what one viewer may see of
an item's stock per warehouse, with its chart and forecast, and of a sales order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from inventory import selectors as inventory
from inventory.models import StockLevel, StockMove
from widgets import charts
from widgets.topics import version_of
from widgets.views import render_widget, widget

HISTORY_WEEKS = 8  # how far back the stock chart looks, and how far its projection looks ahead

# Demand forecasts of stock levels (level pk → forecast), when an app provides them: foresight registers
# its own in ready(); without it the stock chart shows history only.
_stock_forecasts: list[Callable[[list[StockLevel]], dict[int, Any]]] = []


def register_stock_forecasts(forecasts_of: Callable[[list[StockLevel]], dict[int, Any]]) -> None:
    _stock_forecasts[:] = [forecasts_of]


def _forecasts_of(levels: list[StockLevel]) -> dict[int, Any]:
    return _stock_forecasts[0](levels) if _stock_forecasts else {}


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
    return VisibleStock(sku, levels, _forecasts_of(levels))


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


@widget
def stock(request: HttpRequest, sku: str, body: bool = False) -> HttpResponse:
    visible = item_stock(request.viewer, sku)
    if visible is None:
        raise Http404()
    newest = max(level.updated_at for level in visible.levels)
    return render_widget(request, "stock", {
        "title": _("Stock of %(name)s") % {"name": visible.levels[0].name},
        "topic": f"item.{sku}", "version": version_of(newest), "body_path": f"/w/stock/{sku}/body/",
    }, body=body, key=repr(visible.fingerprint()), content=lambda: {"stock": stock_view(visible)})


@widget
def order(request: HttpRequest, number: str, body: bool = False) -> HttpResponse:
    found = inventory.order_for(request.viewer, number)
    if found is None:
        raise Http404()
    return render_widget(request, "order", {
        "title": _("Order %(number)s") % {"number": found.external_id}, "order": found,
        "timeline": list(found.timeline.all()), "topic": f"order.{found.pk}", "version": found.version,
        "body_path": f"/w/order/{number}/body/",
    }, body=body)
