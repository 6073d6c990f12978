"""Stock levels and sales orders as subjects of events and notifications (registered in
``InventoryConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from erp.events import ErpEvent
from erp.subjects import EventSubject, event_data, money, quantity
from inventory.models import SalesOrder, StockLevel


def stock_facts(stock: Any, data: dict[str, Any] | None = None) -> dict[str, Any]:
    supplier = (data or {}).get("supplier") if isinstance((data or {}).get("supplier"), dict) else {}
    return {
        "sku": stock.sku,
        "name": stock.name,
        "item": stock.name,
        "warehouse": stock.warehouse,
        "warehouse_name": stock.warehouse_name or stock.warehouse,
        "quantity": quantity(stock.quantity),
        "available": quantity(stock.available),
        "safety_level": quantity(stock.safety_level),
        "unit": stock.unit,
        "below_safety": stock.below_safety,
        "supplier": str(supplier.get("name", ""))[:200],
        "supplier_contact": str(supplier.get("contact_name", ""))[:150],
        "supplier_email": str(supplier.get("contact_email", ""))[:254],
    }


def order_facts(order: Any) -> dict[str, Any]:
    today = timezone.localdate()
    late = bool(order.delivery_date and order.delivery_date < today and order.status not in ("delivered", "cancelled"))
    return {
        "number": order.external_id,
        "customer": order.customer,
        "status": order.status,
        "previous_status": order.previous_status,
        "amount": money(order.amount) if order.amount is not None else "",
        "amount_value": str(order.amount or 0),
        "currency": order.currency,
        "sales_rep": order.sales_rep_login,
        "delivery_date": order.delivery_date.isoformat() if order.delivery_date else "",
        "delayed": order.status == "delayed" or late,
    }


def _stock_subject(stock: StockLevel, data: dict[str, Any] | None = None) -> EventSubject:
    return EventSubject(f"stock.{stock.pk}", stock, "inventory.view", stock_facts(stock, data),
                        f"/w/stock/{stock.sku}/")


def _order_subject(order: SalesOrder) -> EventSubject:
    return EventSubject(f"order.{order.pk}", order, "orders.view", order_facts(order),
                        f"/w/order/{order.external_id}/")


def stock_from_event(event: ErpEvent) -> EventSubject | None:
    data = event_data(event)
    stock = StockLevel.objects.filter(
        connector=event.connector, sku=str(data.get("sku", "")), warehouse=str(data.get("warehouse", ""))
    ).first()
    return stock and _stock_subject(stock, data)


def stock_from_id(pk: int) -> EventSubject | None:
    stock = StockLevel.objects.filter(pk=pk).first()
    return stock and _stock_subject(stock)


def order_from_event(event: ErpEvent) -> EventSubject | None:
    order_id = str((event_data(event).get("order") or {}).get("id", ""))
    order = SalesOrder.objects.filter(connector=event.connector, external_id=order_id).first()
    return order and _order_subject(order)


def order_from_id(pk: int) -> EventSubject | None:
    order = SalesOrder.objects.filter(pk=pk).first()
    return order and _order_subject(order)
