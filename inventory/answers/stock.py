"""The bot's stock intent: one item (by SKU, name or part of a name), a warehouse, items below their safety level."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from bot import vocabulary
from bot.answers.base import Answer, Context, quantity, widget_path
from im.cards import CardField
from inventory.models import StockLevel
from inventory.selectors import below_safety_level, stock_levels, stock_of_item

LIMIT = 12


def _skus_for(item: str) -> list[str]:
    names = vocabulary.current().item_names
    return sorted(sku for sku, text in names.items() if item in text)


def rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[StockLevel]:
    if entities.get("sku"):
        queryset = stock_of_item(user, entities["sku"])
    elif entities.get("below_safety"):
        queryset = below_safety_level(user)
    else:
        queryset = stock_levels(user)
        if entities.get("item"):
            queryset = queryset.filter(sku__in=_skus_for(entities["item"]))
    if entities.get("below_safety") and entities.get("sku"):
        queryset = queryset & below_safety_level(user)
    if entities.get("warehouse"):
        queryset = queryset.filter(warehouse=entities["warehouse"])
    return list(queryset[:LIMIT])


def visible(member: Any, found: list[StockLevel]) -> set[int]:
    return set(stock_levels(member).filter(pk__in=[s.pk for s in found]).values_list("pk", flat=True))


def _below(level: StockLevel) -> bool:
    return level.safety_level > 0 and level.quantity - level.reserved < level.safety_level


def render(found: list[StockLevel], entities: dict[str, Any], ctx: Context) -> Answer:
    if entities.get("below_safety"):
        title = _("Below safety stock")
    elif found and len({s.sku for s in found}) == 1:
        title = _("Stock: %(item)s (%(sku)s)") % {"item": found[0].name, "sku": found[0].sku}
    else:
        title = _("Stock")
        if entities.get("item") or entities.get("sku"):
            title = f"{title}: {entities.get('item') or entities.get('sku')}"
    if entities.get("warehouse"):
        name = found[0].warehouse_name if found else entities["warehouse"]
        title = f"{title} · {name or entities['warehouse']}"
    if not found:
        if entities.get("below_safety"):
            return Answer(title, note=_("Nothing below its safety level that you may see."), status="empty")
        return Answer(title, note=_("No stock found that you may see."), status="empty")
    single = len({s.sku for s in found}) == 1
    fields = []
    for level in found:
        label = level.warehouse_name or level.warehouse
        if not single:
            label = f"{level.name} ({level.sku}) · {label}"
        available = level.quantity - level.reserved
        value = _("%(qty)s %(unit)s, available %(available)s, safety level %(safety)s") % {
            "qty": quantity(level.quantity, ctx), "unit": level.unit, "available": quantity(available, ctx),
            "safety": quantity(level.safety_level, ctx)}
        if _below(level):
            value += " · " + _("below safety level")
        fields.append(CardField(label, value))
    amount = ""
    link = ""
    if single:
        total = sum((s.quantity for s in found), Decimal(0))
        amount = _("%(qty)s %(unit)s in total") % {"qty": quantity(total, ctx), "unit": found[0].unit}
        link = widget_path("stock", found[0].sku)
    return Answer(title, fields=fields, amount=amount, link=link)
