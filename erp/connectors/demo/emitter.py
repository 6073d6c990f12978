"""The demo ERP's outgoing events, sent exactly as an external ERP sends them.

Each event is a CloudEvents 1.0 envelope, signed with the connector's Standard Webhooks secret and
handed to ``erp.intake.receive`` — the function behind the HTTP intake view, so the demo takes no
side door. An event type the portal has no handler for makes ``receive`` raise IntakeError(400);
that propagates and the caller decides what to do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from erp.intake import IntakeResult, receive
from erp.models import Connector
from erp.payload import money, quantity
from erp.signing import make_cloudevent, signed_request

from .models import ApprovalDocument, ExpenseClaim, PurchaseRequisition, Receivable, SalesOrder, Stock

CONNECTOR_SLUG = "demo"
SOURCE = "urn:erp:demo"

APPROVAL_REQUESTED = "erp.approval.requested"
APPROVAL_DECIDED = "erp.approval.decided"
STOCK_CHANGED = "erp.stock.changed"
ORDER_STATUS_CHANGED = "erp.order.status_changed"
RECEIVABLE_CHANGED = "erp.receivable.changed"
EVENT_TYPES = (APPROVAL_REQUESTED, APPROVAL_DECIDED, STOCK_CHANGED, ORDER_STATUS_CHANGED, RECEIVABLE_CHANGED)


def timestamp(value: dt.datetime) -> str:
    """ISO 8601 with the offset, in the ERP's local time zone (as a Chinese ERP would send it)."""
    return timezone.localtime(value).isoformat()


def send(event_type: str, data: dict[str, Any], subject: str = "") -> IntakeResult:
    """Build, sign and deliver one event through the portal's intake."""
    envelope = build_envelope(event_type, data, subject)
    connector = Connector.objects.get(slug=CONNECTOR_SLUG)
    headers, body = signed_request(connector.webhook_secret, envelope)
    return receive(CONNECTOR_SLUG, headers, body)


def build_envelope(event_type: str, data: dict[str, Any], subject: str = "") -> dict[str, Any]:
    return make_cloudevent(event_type, SOURCE, data, subject)


# --- event data -----------------------------------------------------------------------------


def urgent_reason(doc: ApprovalDocument) -> str:
    """The demo ERP's reason for an urgent requisition: its first item is below safety stock."""
    if not getattr(doc, "urgent", False) or not isinstance(doc, PurchaseRequisition):
        return ""
    line = doc.lines.order_by("pk").first()
    if line is None:
        return "项目紧急需要 / needed urgently by the project"
    return f"{line.name} ({line.sku}) 库存低于安全库存，装配线待料 / below safety stock, the assembly line is waiting"


def approval_requested_data(doc: ApprovalDocument) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": doc.number,
        "kind": doc.kind,
        "title": doc.title,
        "amount": money(doc.amount),
        "currency": doc.currency,
        "requester": doc.requester,
        "project": doc.project.name if doc.project else "",
        "urgent": bool(getattr(doc, "urgent", False)),
        "lines": [],
    }
    if urgent_reason(doc):
        document["urgent_reason"] = urgent_reason(doc)
    if isinstance(doc, PurchaseRequisition):
        document["lines"] = [
            {
                "sku": line.sku,
                "name": line.name,
                "qty": quantity(line.qty),
                "unit_price": money(line.unit_price),
            }
            for line in doc.lines.all()
        ]
    if isinstance(doc, ExpenseClaim):
        document["category"] = doc.category
    return {"document": document, "approvers": list(doc.approvers)}


def approval_decided_data(doc: ApprovalDocument) -> dict[str, Any]:
    if doc.state not in ("approved", "rejected") or doc.decided_at is None:
        raise ValueError(f"{doc.number} has no decision to announce (state {doc.state})")
    return {
        "document": {"id": doc.number, "kind": doc.kind},
        "outcome": doc.state,
        "decided_by": doc.decided_by,
        "decided_at": timestamp(doc.decided_at),
        "comment": doc.decision_comment,
    }


def stock_changed_data(stock: Stock) -> dict[str, Any]:
    supplier = stock.item.supplier
    return {
        "sku": stock.item.sku,
        "name": stock.item.name,
        "warehouse": stock.warehouse.code,
        "warehouse_name": stock.warehouse.name,
        "quantity": quantity(stock.quantity),
        "reserved": quantity(stock.reserved),
        "safety_level": quantity(stock.item.safety_level),
        "unit": stock.item.unit,
        # Who to call when it runs short (the low-stock group invites this contact as an external member).
        "supplier": {
            "name": supplier.name if supplier else "",
            "contact_name": supplier.contact_name if supplier else "",
            "contact_email": supplier.contact_email if supplier else "",
        },
    }


def order_status_changed_data(order: SalesOrder, previous_status: str) -> dict[str, Any]:
    return {
        "order": {
            "id": order.number,
            "customer": order.customer.name,
            "status": order.status,
            "previous_status": previous_status,
            "amount": money(order.amount),
            "currency": order.currency,
            "sales_rep": order.sales_rep,
            # "" rather than null when unknown: the key is always there and always a string.
            "delivery_date": order.delivery_date.isoformat() if order.delivery_date else "",
        }
    }


def receivable_changed_data(receivable: Receivable) -> dict[str, Any]:
    return {
        "receivable": {
            "id": receivable.invoice_number,
            "customer": receivable.customer.name,
            "project": receivable.project.name if receivable.project else "",
            "amount": money(receivable.amount),
            "paid": money(receivable.paid_amount),
            "currency": receivable.currency,
            "due_date": receivable.due_date.isoformat(),
            "sales_rep": receivable.customer.sales_rep,
        }
    }


# --- emitters ------------------------------------------------------------------------------


def emit_approval_requested(doc: ApprovalDocument) -> IntakeResult:
    return send(APPROVAL_REQUESTED, approval_requested_data(doc), subject=doc.number)


def emit_approval_decided(doc: ApprovalDocument) -> IntakeResult:
    return send(APPROVAL_DECIDED, approval_decided_data(doc), subject=doc.number)


def emit_stock_changed(stock: Stock) -> IntakeResult:
    return send(STOCK_CHANGED, stock_changed_data(stock), subject=f"{stock.item.sku}@{stock.warehouse.code}")


def emit_order_status_changed(order: SalesOrder, previous_status: str) -> IntakeResult:
    return send(ORDER_STATUS_CHANGED, order_status_changed_data(order, previous_status), subject=order.number)


def emit_receivable_changed(receivable: Receivable) -> IntakeResult:
    return send(RECEIVABLE_CHANGED, receivable_changed_data(receivable), subject=receivable.invoice_number)
