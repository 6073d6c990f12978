"""Reading stock and orders, always through ``restrict()``."""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet

from inventory.models import SalesOrder, StockLevel
from sso.authz import restrict


def stock_of_item(user: Any, sku: str) -> QuerySet[StockLevel]:
    """One item in every warehouse the user may see."""
    return restrict(StockLevel.objects.filter(sku=sku), user, "inventory.view").order_by("warehouse")


def stock_levels(user: Any) -> QuerySet[StockLevel]:
    return restrict(StockLevel.objects.all(), user, "inventory.view").order_by("sku", "warehouse")


def below_safety_level(user: Any) -> QuerySet[StockLevel]:
    """Available (on hand minus reserved) below the safety level, in warehouses the user may see."""
    return stock_levels(user).filter(quantity__lt=F("reserved") + F("safety_level"), safety_level__gt=0)


def orders_for(user: Any) -> QuerySet[SalesOrder]:
    return restrict(SalesOrder.objects.all(), user, "orders.view").order_by("-updated_at")


def order_for(user: Any, external_id: str) -> SalesOrder | None:
    return orders_for(user).filter(external_id=external_id).first()
