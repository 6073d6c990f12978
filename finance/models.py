from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _


class Receivable(models.Model):
    """The portal's mirror of one open or settled invoice, fed by ``erp.receivable.changed``."""

    connector = models.ForeignKey("erp.Connector", on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(_("invoice number"), max_length=100)
    customer = models.CharField(_("customer"), max_length=200)
    project = models.CharField(_("project"), max_length=100, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2)
    paid = models.DecimalField(_("paid"), max_digits=16, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    due_date = models.DateField(_("due date"))
    last_payment_date = models.DateField(_("last payment"), null=True, blank=True)
    sales_rep_login = models.CharField(_("sales rep (ERP login)"), max_length=150, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("receivable")
        verbose_name_plural = _("receivables")
        ordering = ["due_date", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "external_id"], name="finance_receivable_once"),
        ]
        indexes = [models.Index(fields=["customer"]), models.Index(fields=["project"])]

    def __str__(self) -> str:
        return self.external_id

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid, Decimal("0"))

    def days_overdue(self, today: dt.date) -> int:
        return max((today - self.due_date).days, 0) if self.outstanding else 0
