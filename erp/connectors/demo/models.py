"""The demo ERP's own data, kept in its own tables as if it were a separate system.

Nothing in the portal reads these tables directly: the portal goes through ``DemoConnector`` and
the signed events the emitter sends. Logins (``requester``, ``approvers``, ``decided_by`` …) are the
ERP's own user names, not foreign keys to portal users.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0")


class DemoUser(models.Model):
    """An ERP account. ``roles`` holds role codes such as "buyer" or "purchase_manager"."""

    login = models.CharField(_("login"), max_length=60, unique=True)
    name = models.CharField(_("name"), max_length=60)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    title = models.CharField(_("job title"), max_length=60, blank=True)
    roles = models.JSONField(_("roles"), default=list, blank=True)
    department = models.CharField(_("department"), max_length=60, blank=True)
    email = models.EmailField(_("email"), blank=True)

    class Meta:
        verbose_name = _("ERP user")
        verbose_name_plural = _("ERP users")
        ordering = ["login"]

    def __str__(self) -> str:
        return f"{self.name} ({self.login})"


class Project(models.Model):
    code = models.CharField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    code = models.CharField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    sales_rep = models.CharField(_("sales rep (login)"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Supplier(models.Model):
    code = models.CharField(_("code"), max_length=30, unique=True)
    name = models.CharField(_("name"), max_length=100)
    contact_name = models.CharField(_("contact name"), max_length=100, blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    # From order to goods in the warehouse; restock suggestions cover demand over this time.
    lead_time_days = models.PositiveSmallIntegerField(_("lead time (days)"), default=14)

    class Meta:
        verbose_name = _("supplier")
        verbose_name_plural = _("suppliers")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    sku = models.CharField(_("SKU"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    unit = models.CharField(_("unit"), max_length=20)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    supplier = models.ForeignKey(
        Supplier, on_delete=models.PROTECT, related_name="items", verbose_name=_("supplier")
    )
    safety_level = models.DecimalField(_("safety level"), max_digits=12, decimal_places=2, default=ZERO)
    # The ERP's fixed replenishment rule: below the safety level (the reorder point), order this much.
    reorder_qty = models.DecimalField(_("reorder quantity"), max_digits=12, decimal_places=2, default=ZERO)
    group = models.CharField(_("item group"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Warehouse(models.Model):
    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Stock(models.Model):
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="stock", verbose_name=_("item"))
    warehouse = models.ForeignKey(
        Warehouse, on_delete=models.PROTECT, related_name="stock", verbose_name=_("warehouse")
    )
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2, default=ZERO)
    reserved = models.DecimalField(_("reserved"), max_digits=12, decimal_places=2, default=ZERO)
    on_order = models.DecimalField(_("on order"), max_digits=12, decimal_places=2, default=ZERO)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["warehouse__code", "item__sku"]
        constraints = [
            models.UniqueConstraint(fields=["item", "warehouse"], name="demo_erp_stock_once_per_place"),
        ]

    def __str__(self) -> str:
        return f"{self.item.sku} @ {self.warehouse.code}: {self.quantity}"

    @property
    def below_safety(self) -> bool:
        return self.quantity < self.item.safety_level


class DocumentState(models.TextChoices):
    DRAFT = "draft", _("draft")
    WAITING = "waiting", _("waiting for approval")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")
    CANCELLED = "cancelled", _("cancelled")


class ApprovalDocument(models.Model):
    """What purchase requisitions and expense claims share: both go through approval."""

    kind = ""  # the document kind as the connector and the events name it

    number = models.CharField(_("number"), max_length=30, unique=True)
    title = models.CharField(_("title"), max_length=200)
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("project")
    )
    requester = models.CharField(_("requester (login)"), max_length=60)
    approvers = models.JSONField(_("approvers (logins)"), default=list)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, default=ZERO)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    state = models.CharField(
        _("state"), max_length=20, choices=DocumentState.choices, default=DocumentState.DRAFT, db_index=True
    )
    decided_by = models.CharField(_("decided by (login)"), max_length=60, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_comment = models.TextField(_("decision comment"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def is_decided(self) -> bool:
        return self.state in (DocumentState.APPROVED, DocumentState.REJECTED, DocumentState.CANCELLED)


class PurchaseRequisition(ApprovalDocument):
    kind = "purchase_requisition"

    urgent = models.BooleanField(_("urgent"), default=False)
    # The caller's idempotency key when created through the connector (a restock suggestion).
    source_key = models.CharField(_("source key"), max_length=200, blank=True, default="")

    class Meta(ApprovalDocument.Meta):
        verbose_name = _("purchase requisition")
        verbose_name_plural = _("purchase requisitions")
        constraints = [
            models.UniqueConstraint(fields=["source_key"], condition=~models.Q(source_key=""),
                                    name="demo_erp_requisition_source_key_once"),
        ]


class RequisitionLine(models.Model):
    requisition = models.ForeignKey(
        PurchaseRequisition, on_delete=models.CASCADE, related_name="lines", verbose_name=_("requisition")
    )
    sku = models.CharField(_("SKU"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    qty = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)

    class Meta:
        verbose_name = _("requisition line")
        verbose_name_plural = _("requisition lines")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku} × {self.qty}"

    @classmethod
    def add_to(cls, requisition: PurchaseRequisition, picked: list) -> None:
        """The lines of a new requisition: (item, quantity) pairs, at the item's price."""
        cls.objects.bulk_create(
            cls(requisition=requisition, sku=item.sku, name=item.name, qty=qty, unit_price=item.unit_price)
            for item, qty in picked
        )

    @property
    def total(self) -> Decimal:
        return self.qty * self.unit_price


class ExpenseClaim(ApprovalDocument):
    kind = "expense_claim"

    category = models.CharField(_("category"), max_length=60, blank=True)

    class Meta(ApprovalDocument.Meta):
        verbose_name = _("expense claim")
        verbose_name_plural = _("expense claims")


class SalesOrder(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("confirmed")
        PICKING = "picking", _("picking")
        SHIPPED = "shipped", _("shipped")
        DELIVERED = "delivered", _("delivered")
        DELAYED = "delayed", _("delayed")

    number = models.CharField(_("number"), max_length=30, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer")
    )
    sales_rep = models.CharField(_("sales rep (login)"), max_length=60, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.CONFIRMED)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    delivery_date = models.DateField(_("delivery date"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("sales order")
        verbose_name_plural = _("sales orders")
        ordering = ["-number"]

    def __str__(self) -> str:
        return self.number


class Receivable(models.Model):
    invoice_number = models.CharField(_("invoice number"), max_length=30, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="receivables", verbose_name=_("customer")
    )
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="receivables",
        verbose_name=_("project"),
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    paid_amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2, default=ZERO)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    due_date = models.DateField(_("due date"))
    issued_on = models.DateField(_("issued on"), null=True, blank=True)
    paid_on = models.DateField(_("paid in full on"), null=True, blank=True)

    class Meta:
        verbose_name = _("receivable")
        verbose_name_plural = _("receivables")
        ordering = ["due_date", "invoice_number"]

    def __str__(self) -> str:
        return self.invoice_number

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid_amount

    @property
    def is_overdue(self) -> bool:
        return self.outstanding > 0 and self.due_date < timezone.localdate()


class SalesLine(models.Model):
    """One line of a (past) sales order: what a customer asked for, whether or not it could ship."""

    order_number = models.CharField(_("order number"), max_length=30, db_index=True)
    day = models.DateField(_("date"), db_index=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("customer"))
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="sales_lines", verbose_name=_("item"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    qty = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    promotion = models.BooleanField(_("on promotion"), default=False)

    class Meta:
        verbose_name = _("sales line")
        verbose_name_plural = _("sales lines")
        ordering = ["day", "id"]

    def __str__(self) -> str:
        return f"{self.order_number} {self.item_id} × {self.qty}"


class StockMove(models.Model):
    """A booked movement of stock: goods received, delivered to a customer, consumed in production."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", _("receipt")
        DELIVERY = "delivery", _("delivery")
        CONSUMPTION = "consumption", _("consumption")

    day = models.DateField(_("date"), db_index=True)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="moves", verbose_name=_("item"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+", verbose_name=_("warehouse"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    qty = models.DecimalField(_("quantity (+ in, - out)"), max_digits=12, decimal_places=2)
    reference = models.CharField(_("reference"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["day", "id"]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.qty}"


class AppliedDecision(models.Model):
    """The ERP's record of a decision written back to it, keyed by the caller's idempotency key."""

    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    document_number = models.CharField(_("document number"), max_length=30, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=20)
    actor = models.CharField(_("actor (login)"), max_length=60)
    comment = models.TextField(_("comment"), blank=True)
    decided_at = models.DateTimeField(_("decided at"))

    class Meta:
        verbose_name = _("applied decision")
        verbose_name_plural = _("applied decisions")
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.document_number} {self.outcome} ({self.idempotency_key})"


class FaultPlan(models.Model):
    """Faults the connector injects (tests, demos). One row, pk=1.

    It lives in the database rather than in memory so that a Celery worker running in another
    process obeys it too.
    """

    transient_failures_left = models.PositiveIntegerField(_("transient failures left"), default=0)
    permanent_failure = models.BooleanField(_("permanent failure"), default=False)
    stall_seconds = models.FloatField(_("stall seconds after writing"), default=0)

    class Meta:
        verbose_name = _("fault plan")
        verbose_name_plural = _("fault plan")

    def __str__(self) -> str:
        return (
            f"transient={self.transient_failures_left} permanent={self.permanent_failure} "
            f"stall={self.stall_seconds}s"
        )

    @classmethod
    def current(cls) -> FaultPlan:
        """The plan now in force; an unsaved all-clear plan when none was set."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class PurchaseOrder(models.Model):
    """A purchase order sent to a supplier; its lines carry what the supplier promised."""

    class State(models.TextChoices):
        CONFIRMED = "confirmed", _("confirmed")
        RECEIVED = "received", _("received")
        CANCELLED = "cancelled", _("cancelled")

    number = models.CharField(_("number"), max_length=30, unique=True)
    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="orders",
                                 verbose_name=_("supplier"))
    buyer = models.CharField(_("buyer (login)"), max_length=60, blank=True)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.CONFIRMED)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("purchase order")
        verbose_name_plural = _("purchase orders")
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class PurchaseOrderLine(models.Model):
    """One item on a purchase order. ``version`` moves with every change, so a confirmation made on
    an older view of the line is refused (stale) instead of overwriting what changed meanwhile."""

    order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="lines",
                              verbose_name=_("purchase order"))
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("warehouse"))
    qty = models.DecimalField(_("quantity"), max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    promised_date = models.DateField(_("promised date"), null=True, blank=True)
    confirmed_date = models.DateField(_("delivery date confirmed by the supplier"), null=True, blank=True)
    confirmed_qty = models.DecimalField(_("quantity confirmed by the supplier"), max_digits=12, decimal_places=2,
                                        null=True, blank=True)
    confirmed_by = models.CharField(_("confirmed by"), max_length=200, blank=True)
    expedite_requested_at = models.DateTimeField(_("expedite requested at"), null=True, blank=True)
    received_qty = models.DecimalField(_("received"), max_digits=12, decimal_places=2, default=ZERO)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("purchase order line")
        verbose_name_plural = _("purchase order lines")
        ordering = ["order__number", "id"]

    def __str__(self) -> str:
        return f"{self.order.number} {self.item.sku} × {self.qty}"


class AppliedLineAction(models.Model):
    """An action on a purchase order line the ERP applied, once per idempotency key."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    line = models.ForeignKey(PurchaseOrderLine, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=30)
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("applied purchase order line action")
        verbose_name_plural = _("applied purchase order line actions")

    def __str__(self) -> str:
        return f"{self.action} {self.line_id} ({self.idempotency_key})"
