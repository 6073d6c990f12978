"""The demo ERP's optional capabilities for foresight/: its history, stock positions, and creating a
purchase requisition (which then goes through approval like any other)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from erp.connectors.base import (
    CREATE_REQUISITION,
    DEMAND_HISTORY,
    EXPENSE_HISTORY,
    INVOICE_HISTORY,
    REPLENISHMENT,
    ConnectorError,
    DemandPoint,
    ExpenseRecord,
    InvoiceRecord,
    ReplenishmentPosition,
    RequisitionRequest,
)

from . import emitter
from .models import (
    DemoUser,
    DocumentState,
    ExpenseClaim,
    Item,
    PurchaseRequisition,
    Receivable,
    RequisitionLine,
    SalesLine,
    Stock,
    StockMove,
)

FORESIGHT_CAPABILITIES = frozenset(
    {DEMAND_HISTORY, REPLENISHMENT, INVOICE_HISTORY, EXPENSE_HISTORY, CREATE_REQUISITION}
)
SNAPSHOT = {"draft": "pending", "waiting": "pending", "approved": "approved", "rejected": "rejected",
            "cancelled": "cancelled"}


class HistoryCapabilities:
    """Mixed into DemoConnector."""

    def demand_history(self, since: dt.date | None = None) -> list[DemandPoint]:
        """Sales lines (what customers asked for, shipped or not) and stock consumed in production."""
        lines = SalesLine.objects.all()
        consumed = StockMove.objects.filter(kind=StockMove.Kind.CONSUMPTION)
        if since is not None:
            lines, consumed = lines.filter(day__gte=since), consumed.filter(day__gte=since)
        columns = ("item__sku", "warehouse__code", "day", "qty")
        points = [DemandPoint(sku, wh, day, float(qty), "sale")
                  for sku, wh, day, qty in lines.values_list(*columns).iterator()]
        points += [DemandPoint(sku, wh, day, -float(qty), "consumption")
                   for sku, wh, day, qty in consumed.values_list(*columns).iterator()]
        return points

    def replenishment(self) -> list[ReplenishmentPosition]:
        return [
            ReplenishmentPosition(
                sku=s.item.sku, name=s.item.name, warehouse=s.warehouse.code, warehouse_name=s.warehouse.name,
                unit=s.item.unit, on_hand=s.quantity, reserved=s.reserved, on_order=s.on_order,
                reorder_point=s.item.safety_level, reorder_qty=s.item.reorder_qty, unit_price=s.item.unit_price,
                currency="CNY", supplier=s.item.supplier.name, lead_time_days=s.item.supplier.lead_time_days,
                group=s.item.group,
            )
            for s in Stock.objects.select_related("item__supplier", "warehouse").order_by("item__sku",
                                                                                          "warehouse__code")
        ]

    def invoice_history(self, since: dt.date | None = None) -> list[InvoiceRecord]:
        invoices = Receivable.objects.select_related("customer", "project")
        if since is not None:
            invoices = invoices.filter(due_date__gte=since)
        return [
            InvoiceRecord(
                id=r.invoice_number, customer=r.customer.name, amount=r.amount, paid=r.paid_amount, currency=r.currency,
                issued_on=r.issued_on, due_on=r.due_date,
                paid_on=r.paid_on if r.paid_amount >= r.amount else None,
                project=r.project.name if r.project else "", sales_rep=r.customer.sales_rep,
            )
            for r in invoices.order_by("due_date", "invoice_number").iterator()
        ]

    def expense_history(self, since: dt.date | None = None) -> list[ExpenseRecord]:
        claims = ExpenseClaim.objects.all()
        if since is not None:
            claims = claims.filter(created_at__date__gte=since)
        return [
            ExpenseRecord(id=c.number, requester=c.requester, category=c.category, amount=c.amount, currency=c.currency,
                          day=timezone.localdate(c.created_at), state=SNAPSHOT[c.state])
            for c in claims.order_by("created_at", "number").iterator()
        ]

    def create_requisition(self, request: RequisitionRequest) -> str:
        """A waiting requisition for the purchase managers, announced with erp.approval.requested.

        At most once per idempotency key: a repeat answers with the first requisition's number."""
        from .services import ensure_connector, next_requisition_number

        if not request.idempotency_key:
            raise ConnectorError("an idempotency key is required", permanent=True)
        existing = PurchaseRequisition.objects.filter(source_key=request.idempotency_key).first()
        if existing is not None:
            return existing.number
        if not DemoUser.objects.filter(login=request.requester).exists():
            raise ConnectorError(f"the demo ERP has no user {request.requester!r}", permanent=True)
        known = set(Item.objects.filter(sku__in=[line.sku for line in request.lines]).values_list("sku", flat=True))
        if not request.lines or any(line.sku not in known or line.qty <= 0 for line in request.lines):
            raise ConnectorError("a requisition needs known items and positive quantities", permanent=True)
        approvers = sorted(u.login for u in DemoUser.objects.all() if "purchase_manager" in (u.roles or []))
        for _attempt in range(5):
            number, _sequence = next_requisition_number()
            try:
                with transaction.atomic():
                    requisition = PurchaseRequisition.objects.create(
                        number=number, title=request.title[:200], requester=request.requester, approvers=approvers,
                        amount=sum((line.qty * line.unit_price for line in request.lines), Decimal("0")),
                        currency="CNY", state=DocumentState.WAITING, source_key=request.idempotency_key,
                        decision_comment="",
                    )
                    RequisitionLine.objects.bulk_create(
                        RequisitionLine(requisition=requisition, sku=line.sku, name=line.name, qty=line.qty,
                                        unit_price=line.unit_price)
                        for line in request.lines
                    )
                break
            except IntegrityError:
                existing = PurchaseRequisition.objects.filter(source_key=request.idempotency_key).first()
                if existing is not None:
                    return existing.number  # a concurrent call with the same key won
                continue  # another requisition took this number meanwhile
        else:
            raise ConnectorError("could not allocate a requisition number")
        ensure_connector()
        emitter.emit_approval_requested(requisition)  # as the ERP's webhook would, after saving
        return requisition.number
