"""The demo ERP's own actions (its console page, the demo, tests).

Each action first commits its change in the ERP and then emits the matching event, the way a real
ERP fires a webhook after saving. If the portal refuses the event (IntakeError), the ERP change
stays: the error propagates for the caller to report.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from erp.models import Connector

from . import emitter
from .connector import OUTCOME_STATES, find_document
from .models import (
    ApprovalDocument,
    DocumentState,
    ExpenseClaim,
    FaultPlan,
    Item,
    Project,
    PurchaseRequisition,
    Receivable,
    RequisitionLine,
    SalesOrder,
    Stock,
    Warehouse,
)

REQUISITION_PREFIX = "PR-2026-"
URGENT_REQUESTER = "zhang.san"
URGENT_APPROVERS = ["li.si"]
URGENT_PROJECT_CODE = "PRJ-A"


def ensure_connector() -> Connector:
    """The portal-side Connector row for the demo ERP, created on first use.

    ERP_DEMO_WEBHOOK_SECRET pins the signing secret (e.g. to share it with an external script);
    without it the generated secret is kept.
    """
    connector, _created = Connector.objects.get_or_create(
        slug=emitter.CONNECTOR_SLUG, defaults={"name": "Demo ERP", "kind": "demo"}
    )
    secret = os.environ.get("ERP_DEMO_WEBHOOK_SECRET", "")
    if secret and connector.webhook_secret != secret:
        connector.webhook_secret = secret
        connector.save(update_fields=["webhook_secret"])
    return connector


def next_requisition_number() -> tuple[str, int]:
    """The next free PR-2026-NNNN number and its sequence number."""
    highest = 0
    pattern = re.compile(re.escape(REQUISITION_PREFIX) + r"(\d+)$")
    for number in PurchaseRequisition.objects.filter(number__startswith=REQUISITION_PREFIX).values_list(
        "number", flat=True
    ):
        match = pattern.match(number)
        if match:
            highest = max(highest, int(match.group(1)))
    sequence = highest + 1
    return f"{REQUISITION_PREFIX}{sequence:04d}", sequence


def create_urgent_requisition(now: dt.datetime | None = None) -> PurchaseRequisition:
    """A new urgent requisition waiting for li.si, then erp.approval.requested for it."""
    now = now or timezone.now()
    items = list(Item.objects.order_by("sku"))
    if not items:
        raise ValueError(_("The demo ERP has no items yet: run the demo seed first."))
    project = Project.objects.filter(code=URGENT_PROJECT_CODE).first()

    for _attempt in range(5):
        number, sequence = next_requisition_number()
        # Vary the items and quantities by sequence number so that successive clicks differ.
        first = items[sequence % len(items)]
        picked = [(first, Decimal(sequence % 4 + 1))]
        if sequence % 2 == 0 and len(items) > 1:
            picked.append((items[(sequence + 3) % len(items)], Decimal(sequence % 3 + 2)))
        try:
            with transaction.atomic():
                requisition = PurchaseRequisition.objects.create(
                    number=number,
                    title=f"紧急采购: {first.name}",
                    project=project,
                    requester=URGENT_REQUESTER,
                    approvers=list(URGENT_APPROVERS),
                    amount=sum((item.unit_price * qty for item, qty in picked), Decimal("0")),
                    currency="CNY",
                    state=DocumentState.WAITING,
                    urgent=True,
                    created_at=now,
                )
                RequisitionLine.add_to(requisition, picked)
            break
        except IntegrityError:
            continue  # another click took this number meanwhile; pick the next one
    else:
        raise RuntimeError("could not allocate a requisition number")

    ensure_connector()
    emitter.emit_approval_requested(requisition)
    return requisition


CLAIM_PREFIX = "EC-2026-"
UNUSUAL_CLAIM_AMOUNT = Decimal("9800.00")


def create_expense_claim(amount: Decimal | None = None, now: dt.datetime | None = None) -> ExpenseClaim:
    """A new expense claim by chen.qi for wang.wu, by default far above the usual amount (scenario 3)."""
    now = now or timezone.now()
    pattern = re.compile(re.escape(CLAIM_PREFIX) + r"(\d+)$")
    for _attempt in range(5):
        numbers = ExpenseClaim.objects.filter(number__startswith=CLAIM_PREFIX).values_list("number", flat=True)
        highest = max((int(m.group(1)) for n in numbers if (m := pattern.match(n))), default=0)
        try:
            with transaction.atomic():
                claim = ExpenseClaim.objects.create(
                    number=f"{CLAIM_PREFIX}{highest + 1:04d}",
                    title="客户招待费 — 深圳创新科技",
                    project=Project.objects.filter(code="PRJ-B").first(),
                    requester="chen.qi",
                    approvers=["wang.wu"],
                    amount=amount if amount is not None else UNUSUAL_CLAIM_AMOUNT,
                    currency="CNY",
                    state=DocumentState.WAITING,
                    category="业务招待",
                    created_at=now,
                )
            break
        except IntegrityError:
            continue  # another click took this number meanwhile
    else:
        raise RuntimeError("could not allocate an expense claim number")
    ensure_connector()
    emitter.emit_approval_requested(claim)
    return claim


def decide_in_erp(number: str, outcome: str, actor: str, comment: str = "") -> ApprovalDocument:
    """A decision taken in the ERP itself (not through the portal), then erp.approval.decided."""
    if outcome not in OUTCOME_STATES:
        raise ValueError(_("Unknown outcome %(outcome)r: use approved or rejected.") % {"outcome": outcome})
    with transaction.atomic():
        document = find_document(number, for_update=True)
        if document is None:
            raise ValueError(_("The demo ERP has no document %(number)s.") % {"number": number})
        if document.is_decided:
            raise ValueError(
                _("%(number)s is already %(state)s by %(login)s.")
                % {
                    "number": number,
                    "state": document.get_state_display(),
                    "login": document.decided_by or "?",
                }
            )
        if document.state != DocumentState.WAITING:
            raise ValueError(_("%(number)s is not waiting for approval.") % {"number": number})
        if actor not in document.approvers:
            raise ValueError(
                _("%(login)s is not an approver of %(number)s.") % {"login": actor, "number": number}
            )
        document.state = OUTCOME_STATES[outcome]
        document.decided_by = actor
        document.decided_at = timezone.now()
        document.decision_comment = comment
        document.save(update_fields=["state", "decided_by", "decided_at", "decision_comment"])

    ensure_connector()
    emitter.emit_approval_decided(document)
    return document


def resend_approval_requested(number: str) -> ApprovalDocument:
    """Send erp.approval.requested again for a waiting document (e.g. after the portal refused it)."""
    document = find_document(number)
    if document is None:
        raise ValueError(_("The demo ERP has no document %(number)s.") % {"number": number})
    if document.state != DocumentState.WAITING:
        raise ValueError(_("%(number)s is not waiting for approval.") % {"number": number})
    ensure_connector()
    emitter.emit_approval_requested(document)
    return document


def adjust_stock(sku: str, warehouse_code: str, delta: Decimal | int) -> Stock:
    """Book ``delta`` into (or out of) a warehouse, then erp.stock.changed."""
    delta = Decimal(delta)
    with transaction.atomic():
        item = Item.objects.filter(sku=sku).first()
        if item is None:
            raise ValueError(_("Unknown item %(sku)s.") % {"sku": sku})
        stock = (
            Stock.objects.select_for_update()
            .select_related("item", "warehouse")
            .filter(item=item, warehouse__code=warehouse_code)
            .first()
        )
        if stock is None:
            warehouse = Warehouse.objects.filter(code=warehouse_code).first()
            if warehouse is None:
                raise ValueError(_("Unknown warehouse %(code)s.") % {"code": warehouse_code})
            stock = Stock.objects.create(item=item, warehouse=warehouse)
        if stock.quantity + delta < 0:
            raise ValueError(
                _("%(sku)s in %(warehouse)s has only %(quantity)s %(unit)s.")
                % {
                    "sku": sku,
                    "warehouse": warehouse_code,
                    "quantity": emitter.quantity(stock.quantity),
                    "unit": item.unit,
                }
            )
        stock.quantity += delta
        stock.save(update_fields=["quantity", "updated_at"])

    ensure_connector()
    emitter.emit_stock_changed(stock)
    return stock


def set_order_status(number: str, status: str) -> SalesOrder:
    """Move a sales order to ``status``, then erp.order.status_changed (nothing if unchanged)."""
    if status not in SalesOrder.Status.values:
        raise ValueError(_("Unknown order status %(status)r.") % {"status": status})
    with transaction.atomic():
        order = SalesOrder.objects.select_for_update().filter(number=number).first()
        if order is None:
            raise ValueError(_("Unknown sales order %(number)s.") % {"number": number})
        previous = order.status
        if previous == status:
            return order
        order.status = status
        order.save(update_fields=["status"])

    ensure_connector()
    order = SalesOrder.objects.select_related("customer").get(pk=order.pk)
    emitter.emit_order_status_changed(order, previous)
    return order


def set_faults(transient_failures: int = 0, permanent: bool = False, stall_seconds: float = 0.0) -> FaultPlan:
    """Make DemoConnector.decide fail or stall (read from the DB, so Celery workers obey it too)."""
    plan, _created = FaultPlan.objects.update_or_create(
        pk=1,
        defaults={
            "transient_failures_left": transient_failures,
            "permanent_failure": permanent,
            "stall_seconds": stall_seconds,
        },
    )
    return plan


def clear_faults() -> FaultPlan:
    return set_faults()


def record_payment(invoice: str, amount: Decimal | int | str) -> Receivable:
    """Book a customer payment against an invoice, then erp.receivable.changed."""
    amount = Decimal(str(amount))
    if amount <= 0:
        raise ValueError(_("A payment must be positive."))
    with transaction.atomic():
        receivable = (
            # of=("self",): Postgres refuses FOR UPDATE on the nullable side of the join to project.
            Receivable.objects.select_for_update(of=("self",)).select_related("customer", "project")
            .filter(invoice_number=invoice).first()
        )
        if receivable is None:
            raise ValueError(_("Unknown invoice %(number)s.") % {"number": invoice})
        if receivable.paid_amount + amount > receivable.amount:
            raise ValueError(_("The payment is more than what is still owed."))
        receivable.paid_amount += amount
        receivable.save(update_fields=["paid_amount"])
    ensure_connector()
    emitter.emit_receivable_changed(receivable)
    return receivable
