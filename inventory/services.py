"""Mirror stock and order events. Alerts, groups and widgets on top of them come in later issues."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date

from erp.events import ErpEvent, EventDataError
from inventory.models import OrderStatusChange, SalesOrder, StockLevel, StockMove
from widgets.live import publish
from widgets.topics import version_of


def _str(data: dict, key: str, *, required: bool = True, max_length: int = 200) -> str:
    value = data.get(key, "")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise EventDataError(f"{key} must be a string")
    value = str(value).strip()
    if required and not value:
        raise EventDataError(f"{key} is required")
    if len(value) > max_length:
        raise EventDataError(f"{key} is longer than {max_length} characters")
    return value


def _dec(data: dict, key: str, default: str | None = None) -> Decimal:
    raw = data.get(key, default)
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise EventDataError(f"{key} must be a decimal string")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise EventDataError(f"{key} is not a number") from exc
    if not value.is_finite() or abs(value) >= Decimal("1e12"):
        raise EventDataError(f"{key} is out of range")
    return value


def handle_stock_changed(event: ErpEvent) -> None:
    data = event.data
    stock, created = StockLevel.objects.select_for_update().get_or_create(
        connector=event.connector,
        sku=_str(data, "sku", max_length=100),
        warehouse=_str(data, "warehouse", max_length=100),
        defaults={"quantity": 0, "name": ""},
    )
    before = Decimal("0") if created else stock.quantity
    stock.name = _str(data, "name", max_length=300)
    stock.warehouse_name = _str(data, "warehouse_name", required=False)
    stock.quantity = _dec(data, "quantity")
    stock.reserved = _dec(data, "reserved", "0")
    stock.safety_level = _dec(data, "safety_level", "0")
    stock.unit = _str(data, "unit", required=False, max_length=20)
    if not created:
        stock.version += 1
    stock.save()
    if created or stock.quantity != before:
        StockMove.objects.create(stock=stock, quantity=stock.quantity, delta=stock.quantity - before)
    publish(f"stock.{stock.pk}", stock.version)
    publish(f"item.{stock.sku}", version_of(stock.updated_at))


def handle_order_status_changed(event: ErpEvent) -> None:
    order_data = event.data.get("order")
    if not isinstance(order_data, dict):
        raise EventDataError("order must be an object")
    delivery_raw = _str(order_data, "delivery_date", required=False, max_length=10)
    try:
        delivery_date = parse_date(delivery_raw) if delivery_raw else None
    except ValueError:
        delivery_date = None
    if delivery_raw and delivery_date is None:
        raise EventDataError("delivery_date must be a date, YYYY-MM-DD")
    amount = _dec(order_data, "amount") if order_data.get("amount") not in (None, "") else None
    order, created = SalesOrder.objects.select_for_update().get_or_create(
        connector=event.connector,
        external_id=_str(order_data, "id", max_length=100),
        defaults={"customer": "", "status": ""},
    )
    order.customer = _str(order_data, "customer")
    order.previous_status = _str(order_data, "previous_status", required=False, max_length=50)
    status = _str(order_data, "status", max_length=50)
    moved = created or status != order.status
    order.status = status
    order.amount = amount
    order.currency = _str(order_data, "currency", required=False, max_length=3) or "CNY"
    order.sales_rep_login = _str(order_data, "sales_rep", required=False, max_length=150)
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
        "quantity": {"type": "string", "examples": ["12"]},
        "reserved": {"type": "string", "default": "0"},
        "safety_level": {"type": "string", "default": "0"},
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
                "amount": {"type": "string"},
                "currency": {"type": "string"},
                "sales_rep": {"type": "string", "description": "ERP login"},
                "delivery_date": {"type": "string", "format": "date"},
            },
        }
    },
}
