"""Mirror stock and order events. Alerts, groups and widgets on top of them come in later issues."""

from __future__ import annotations

from decimal import Decimal

from erp.events import ErpEvent
from erp.payload import DECIMAL_SCHEMA, date, decimal_for, read, text
from inventory.models import OrderStatusChange, SalesOrder, StockLevel, StockMove
from widgets.live import publish
from widgets.topics import version_of


def handle_stock_changed(event: ErpEvent) -> None:
    data = read(event.data)
    stock, created = StockLevel.objects.select_for_update().get_or_create(
        connector=event.connector,
        sku=data["sku"].tame(text(max_length=100)),
        warehouse=data["warehouse"].tame(text(max_length=100)),
        defaults={"quantity": 0, "name": ""},
    )
    before = Decimal("0") if created else stock.quantity
    stock.name = data["name"].tame(text(max_length=300))
    stock.warehouse_name = data["warehouse_name"].tame(text(max_length=200, required=False))
    stock.quantity = data["quantity"].tame(decimal_for(StockLevel, "quantity"))
    stock.reserved = data["reserved"].tame(decimal_for(StockLevel, "reserved", default=Decimal("0")))
    stock.safety_level = data["safety_level"].tame(decimal_for(StockLevel, "safety_level", default=Decimal("0")))
    stock.unit = data["unit"].tame(text(max_length=20, required=False))
    if not created:
        stock.version += 1
    stock.save()
    if created or stock.quantity != before:
        StockMove.objects.create(stock=stock, quantity=stock.quantity, delta=stock.quantity - before)
    publish(f"stock.{stock.pk}", stock.version)
    publish(f"item.{stock.sku}", version_of(stock.updated_at))


def handle_order_status_changed(event: ErpEvent) -> None:
    data = read(event.data)["order"]
    data.object()
    delivery_date = data["delivery_date"].tame(date(required=False))
    amount = None if data["amount"].missing else data["amount"].tame(decimal_for(SalesOrder, "amount"))
    order, created = SalesOrder.objects.select_for_update().get_or_create(
        connector=event.connector,
        external_id=data["id"].tame(text(max_length=100)),
        defaults={"customer": "", "status": ""},
    )
    order.customer = data["customer"].tame(text(max_length=200))
    order.previous_status = data["previous_status"].tame(text(max_length=50, required=False))
    status = data["status"].tame(text(max_length=50))
    moved = created or status != order.status
    order.status = status
    order.amount = amount
    order.currency = data["currency"].tame(text(max_length=3, required=False)) or "CNY"
    order.sales_rep_login = data["sales_rep"].tame(text(max_length=150, required=False))
    order.delivery_date = delivery_date
    if not created:
        order.version += 1
    order.save()
    if moved:
        OrderStatusChange.objects.create(order=order, status=order.status)
    publish(f"order.{order.pk}", order.version)


STOCK_CHANGED = {
    "type": "object",
    "required": ["sku", "name", "warehouse", "quantity"],
    "properties": {
        "sku": {"type": "string", "examples": ["SKU-123"]},
        "name": {"type": "string", "examples": ["伺服电机"]},
        "warehouse": {"type": "string", "examples": ["SH"]},
        "warehouse_name": {"type": "string", "examples": ["上海仓"]},
        "quantity": {**DECIMAL_SCHEMA, "examples": ["12"]},
        "reserved": {**DECIMAL_SCHEMA, "default": "0"},
        "safety_level": {**DECIMAL_SCHEMA, "default": "0"},
        "unit": {"type": "string", "examples": ["台"]},
        "supplier": {
            "type": "object",
            "description": "optional: the item's supplier and its contact (invited to low-stock groups)",
            "properties": {
                "name": {"type": "string"}, "contact_name": {"type": "string"}, "contact_email": {"type": "string"},
            },
        },
    },
}
ORDER_STATUS_CHANGED = {
    "type": "object",
    "required": ["order"],
    "properties": {
        "order": {
            "type": "object",
            "required": ["id", "customer", "status"],
            "properties": {
                "id": {"type": "string", "examples": ["SO-2026-0815"]},
                "customer": {"type": "string", "examples": ["华东电子"]},
                "status": {"type": "string", "examples": ["shipped"]},
                "previous_status": {"type": "string"},
                "amount": {**DECIMAL_SCHEMA, "type": ["string", "number", "null"],
                           "pattern": r"^\s*(-?\d+(\.\d+)?)?\s*$"},
                "currency": {"type": "string"},
                "sales_rep": {"type": "string", "description": "ERP login"},
                "delivery_date": {"type": "string", "format": "date"},
            },
        }
    },
}
