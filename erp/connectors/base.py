"""The one small interface every ERP connector implements.

A connector is a module under ``erp/connectors/<name>/`` with its tests and recorded fixtures beside
it. The portal only ever talks to an ERP through these methods.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

Outcome = Literal["approved", "rejected"]


class ConnectorError(Exception):
    """An ERP call failed. ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DecisionConflict(Exception):
    """The ERP already holds a different decision (made in the ERP itself, or elsewhere)."""

    def __init__(self, outcome: str, decided_by: str, decided_at: dt.datetime | None) -> None:
        super().__init__(f"already {outcome} by {decided_by}")
        self.outcome = outcome
        self.decided_by = decided_by
        self.decided_at = decided_at


@dataclass(frozen=True)
class DocumentLine:
    sku: str
    name: str
    qty: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class DocumentSnapshot:
    """An approval document as the ERP holds it now."""

    id: str
    kind: str
    title: str
    amount: Decimal
    currency: str
    requester: str
    project: str
    state: str  # "pending", "approved", "rejected" or "cancelled"
    approvers: list[str] = field(default_factory=list)
    lines: list[DocumentLine] = field(default_factory=list)
    decided_by: str = ""
    decided_at: dt.datetime | None = None


@dataclass(frozen=True)
class WritebackResult:
    """What the ERP recorded. ``replayed`` is true when the idempotency key had been seen before."""

    outcome: Outcome
    decided_by: str
    decided_at: dt.datetime
    erp_reference: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class ErpUser:
    """An ERP account as the identity sync sees it (``sso.services.sync_erp_identities``)."""

    login: str
    name: str = ""
    email: str = ""
    roles: tuple[str, ...] = ()
    employee: str = ""
    department: str = ""
    active: bool = True


class ErpConnector(Protocol):
    slug: str

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        """The document as the ERP holds it, or None when the ERP does not know it."""

    def decide(
        self,
        external_id: str,
        outcome: Outcome,
        *,
        actor: str,
        comment: str,
        idempotency_key: str,
    ) -> WritebackResult:
        """Record a decision in the ERP, at most once per idempotency key.

        Calling again with the same key returns the first result (``replayed=True``) and changes
        nothing. Raises DecisionConflict when the ERP holds a different decision, ConnectorError
        otherwise.
        """

    def users(self) -> list[ErpUser]:
        """Every ERP account with its roles, for the identity and role sync."""


# --- optional read capabilities ---------------------------------------------------------------
# The four calls above are what every connector has. Anything more is optional: a connector names
# what it can do in ``capabilities`` and callers ask ``supports(connector, STOCK)`` instead of
# probing for methods or guessing from the kind.
STOCK = "stock"  # stock(skus, warehouses) -> list[StockLevel]
SALES_ORDERS = "sales_orders"  # sales_orders(since=) -> list[SalesOrder]
RECEIVABLES = "receivables"  # receivables(customer=, project=, open_only=, since=) -> list[Receivable]
CHANGES = "changes"  # changes(since) -> ChangeSet
TEST_CONNECTION = "test_connection"  # test_connection() -> list[ConnectionCheck]


def supports(connector: object, capability: str) -> bool:
    """Whether ``connector`` declared ``capability`` (a connector without the attribute has none)."""
    return capability in getattr(connector, "capabilities", frozenset())


@dataclass(frozen=True)
class StockLevel:
    """On-hand stock of one item in one warehouse. ``forecast`` is set by ERPs that project it."""

    sku: str
    name: str
    warehouse: str
    warehouse_name: str = ""
    quantity: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    safety_level: Decimal = Decimal(0)
    unit: str = ""
    forecast: Decimal | None = None


@dataclass(frozen=True)
class SalesOrder:
    id: str
    customer: str
    status: str  # the ERP's own status name
    amount: Decimal
    currency: str
    order_date: dt.date | None = None
    delivery_date: dt.date | None = None
    sales_rep: str = ""  # ERP login
    changed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Receivable:
    """One customer invoice: what was billed, what is paid, when it is due."""

    id: str
    customer: str
    amount: Decimal
    currency: str
    due_date: dt.date | None
    paid: Decimal = Decimal(0)
    project: str = ""
    last_payment_date: dt.date | None = None
    sales_rep: str = ""
    changed_at: dt.datetime | None = None

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid, Decimal(0))


ChangeKind = Literal["document", "stock", "order", "receivable"]


@dataclass(frozen=True)
class Change:
    """Something that changed in the ERP: read it with the matching call (``id`` is its key there:
    a document number, an item's SKU, an order or invoice number)."""

    kind: ChangeKind
    id: str
    changed_at: dt.datetime
    state: str = ""


@dataclass(frozen=True)
class ChangeSet:
    """What changed at or after ``since``; pass ``cursor`` back next time. Callers re-read a
    window before the cursor (late commits carry older stamps) and drop what they already saw."""

    changes: list[Change]
    cursor: dt.datetime | None


@dataclass(frozen=True)
class ConnectionCheck:
    """One line of the admin "test connection" report; ``capability`` names what it vouches for."""

    name: str
    ok: bool
    detail: str = ""
    capability: str = ""


class StockReader(Protocol):
    def stock(self, skus: list[str] | None = None, warehouses: list[str] | None = None) -> list[StockLevel]: ...


class OrderReader(Protocol):
    def sales_orders(self, *, since: dt.datetime | None = None) -> list[SalesOrder]: ...


class ReceivablesReader(Protocol):
    def receivables(
        self, *, customer: str = "", project: str = "", open_only: bool = True, since: dt.datetime | None = None
    ) -> list[Receivable]: ...


class ChangeFeed(Protocol):
    def changes(self, since: dt.datetime | None) -> ChangeSet: ...


# --- optional history and requisition capabilities (foresight/) -------------------------------
DEMAND_HISTORY = "demand_history"  # demand_history(since) -> list[DemandPoint]
REPLENISHMENT = "replenishment"  # replenishment() -> list[ReplenishmentPosition]
INVOICE_HISTORY = "invoice_history"  # invoice_history(since) -> list[InvoiceRecord]
EXPENSE_HISTORY = "expense_history"  # expense_history(since) -> list[ExpenseRecord]
CREATE_REQUISITION = "create_requisition"  # create_requisition(RequisitionRequest) -> document number


@dataclass(frozen=True)
class DemandPoint:
    """Demand for one item in one warehouse on one day: a sales line, or stock consumed in production."""

    sku: str
    warehouse: str
    day: dt.date
    qty: float
    source: str = "sale"  # "sale" or "consumption"


@dataclass(frozen=True)
class ReplenishmentPosition:
    """Stock, what is on order, the supplier's lead time and the ERP's own fixed reorder rule."""

    sku: str
    name: str
    warehouse: str
    warehouse_name: str
    unit: str
    on_hand: Decimal
    reserved: Decimal
    on_order: Decimal
    reorder_point: Decimal
    reorder_qty: Decimal
    unit_price: Decimal
    currency: str
    supplier: str
    lead_time_days: int
    group: str = ""


@dataclass(frozen=True)
class InvoiceRecord:
    """A customer invoice with its dates: ``paid_on`` is None while it is not paid in full."""

    id: str
    customer: str
    amount: Decimal
    paid: Decimal
    currency: str
    issued_on: dt.date | None
    due_on: dt.date
    paid_on: dt.date | None
    project: str = ""
    sales_rep: str = ""


@dataclass(frozen=True)
class ExpenseRecord:
    id: str
    requester: str
    category: str
    amount: Decimal
    currency: str
    day: dt.date
    state: str  # as DocumentSnapshot.state


@dataclass(frozen=True)
class RequisitionRequest:
    """A purchase requisition to create in the ERP; the same ``idempotency_key`` creates it once."""

    requester: str
    title: str
    lines: list[DocumentLine]
    idempotency_key: str
    note: str = ""


# --- optional purchasing capabilities (boards/: the supplier at the table) ---------------------
PURCHASE_ORDERS = "purchase_orders"  # purchase_order_lines(sku=, supplier=) -> list[PurchaseOrderLine]
CONFIRM_DELIVERY = "confirm_delivery"  # confirm_delivery(LineConfirmation) -> PurchaseOrderLine
EXPEDITE_ORDER = "expedite_order"  # expedite_line(line_id, expected_version=, actor=, idempotency_key=)
# What a board's purchasing actions need; a connector declares all three or none.
PURCHASING_CAPABILITIES = frozenset({PURCHASE_ORDERS, CONFIRM_DELIVERY, EXPEDITE_ORDER})


@dataclass(frozen=True)
class PurchaseOrderLine:
    """An open purchase order line as the ERP holds it now. ``version`` changes with every change."""

    id: str
    order: str
    supplier: str
    supplier_email: str
    sku: str
    name: str
    warehouse: str
    warehouse_name: str
    qty: Decimal
    unit_price: Decimal
    currency: str
    promised_date: dt.date | None
    confirmed_date: dt.date | None = None
    confirmed_qty: Decimal | None = None
    confirmed_by: str = ""
    expedite_requested: bool = False
    version: int = 1

    def facts(self) -> dict[str, str]:
        """The fields a stale refusal compares, as text."""
        return {"qty": str(self.qty), "promised_date": str(self.promised_date or ""),
                "confirmed_date": str(self.confirmed_date or ""), "confirmed_qty": str(self.confirmed_qty or "")}


@dataclass(frozen=True)
class LineConfirmation:
    """The supplier confirms a delivery date and (optionally) a partial quantity for one line, as of
    ``expected_version``; the same ``idempotency_key`` applies it once."""

    line_id: str
    delivery_date: dt.date
    quantity: Decimal | None
    expected_version: int
    actor: str
    idempotency_key: str


class StaleObject(Exception):
    """The object changed since the caller read it: ``current`` is how it is now."""

    def __init__(self, current: object, changed: dict[str, tuple[str, str]] | None = None) -> None:
        super().__init__("the object changed meanwhile")
        self.current = current
        self.changed = changed or {}
