from django.db import models
from django.utils.translation import gettext_lazy as _


class StockLevel(models.Model):
    """Mirror of an item's stock in one warehouse, as the ERP last reported it."""

    connector = models.ForeignKey("erp.Connector", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(_("SKU"), max_length=100)
    name = models.CharField(_("item"), max_length=300)
    warehouse = models.CharField(_("warehouse"), max_length=100)
    warehouse_name = models.CharField(_("warehouse name"), max_length=200, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=16, decimal_places=4)
    reserved = models.DecimalField(_("reserved"), max_digits=16, decimal_places=4, default=0)
    safety_level = models.DecimalField(_("safety level"), max_digits=16, decimal_places=4, default=0)
    unit = models.CharField(_("unit"), max_length=20, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [
            models.UniqueConstraint(fields=["connector", "sku", "warehouse"], name="inventory_stock_once"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} @ {self.warehouse}: {self.quantity}"

    @property
    def available(self):
        return self.quantity - self.reserved

    @property
    def below_safety(self) -> bool:
        """Available stock under the safety level (the same test as ``selectors.below_safety_level``)."""
        return self.safety_level > 0 and self.available < self.safety_level


# The ERP's order status words as people read them; an unknown word is shown as the ERP sent it.
ORDER_STATUS_LABELS = {
    "draft": _("Draft"), "confirmed": _("Confirmed"), "picking": _("Picking"), "shipped": _("Shipped"),
    "delivered": _("Delivered"), "delayed": _("Delayed"), "cancelled": _("Cancelled"), "invoiced": _("Invoiced"),
}


def order_status_label(status: str) -> str:
    return str(ORDER_STATUS_LABELS.get(status, status))


class SalesOrder(models.Model):
    """Mirror of a sales order's status."""

    connector = models.ForeignKey("erp.Connector", on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(_("order number"), max_length=100)
    customer = models.CharField(_("customer"), max_length=200)
    status = models.CharField(_("status"), max_length=50)
    previous_status = models.CharField(_("previous status"), max_length=50, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    sales_rep_login = models.CharField(_("sales rep (ERP login)"), max_length=150, blank=True)
    delivery_date = models.DateField(_("delivery date"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sales order")
        verbose_name_plural = _("sales orders")
        constraints = [
            models.UniqueConstraint(fields=["connector", "external_id"], name="inventory_order_once"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.status}"


    @property
    def status_label(self) -> str:
        return order_status_label(self.status)


class StockMove(models.Model):
    """A change of one stock level as the ERP reported it, for the widget's "recent moves"."""

    stock = models.ForeignKey(StockLevel, on_delete=models.CASCADE, related_name="moves")
    quantity = models.DecimalField(_("quantity after"), max_digits=16, decimal_places=4)
    delta = models.DecimalField(_("change"), max_digits=16, decimal_places=4)
    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.stock} {self.delta:+}"


class OrderStatusChange(models.Model):
    """One step of an order's timeline."""

    order = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="timeline")
    status = models.CharField(_("status"), max_length=50)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("order status change")
        verbose_name_plural = _("order status changes")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.order} → {self.status}"

    @property
    def status_label(self) -> str:
        return order_status_label(self.status)
