"""What foresight computed, with the model run (version, metrics) that computed it, and what people
did with it (feedback)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ModelRun(models.Model):
    """One training or scoring run of one kind. ``version`` is stamped on everything it produced."""

    class Kind(models.TextChoices):
        DEMAND = "demand", _("demand forecast")
        CREDIT = "credit", _("late-payment risk")
        EXPENSE = "expense", _("unusual expenses")

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    connector = models.ForeignKey("erp.Connector", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    version = models.CharField(_("version"), max_length=60, unique=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("model run")
        verbose_name_plural = _("model runs")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return self.version


class SeriesForecast(models.Model):
    """The latest forecast of one item in one warehouse, weekly, with the method the backtest chose."""

    connector = models.ForeignKey("erp.Connector", on_delete=models.CASCADE, related_name="+")
    sku = models.CharField(_("SKU"), max_length=100)
    warehouse = models.CharField(_("warehouse"), max_length=100)
    run = models.ForeignKey(ModelRun, on_delete=models.PROTECT, related_name="+")
    method = models.CharField(_("method"), max_length=20)
    forecast = models.JSONField(_("weekly forecast"), default=list)
    sigma = models.FloatField(_("weekly error (σ)"), default=0)
    backtest = models.JSONField(_("backtest error per method"), default=dict, blank=True)
    fingerprint = models.CharField(_("history fingerprint"), max_length=64)
    history_end = models.DateField(_("history up to"))
    fitted_at = models.DateTimeField(_("fitted at"))

    class Meta:
        verbose_name = _("series forecast")
        verbose_name_plural = _("series forecasts")
        constraints = [
            models.UniqueConstraint(fields=["connector", "sku", "warehouse"], name="foresight_forecast_once"),
        ]

    def __str__(self) -> str:
        return f"{self.sku}@{self.warehouse} {self.method}"


class RestockSuggestion(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        REQUISITIONED = "requisitioned", _("requisition created")
        DISMISSED = "dismissed", _("dismissed")
        RESOLVED = "resolved", _("no longer needed")

    connector = models.ForeignKey("erp.Connector", on_delete=models.CASCADE, related_name="+")
    sku = models.CharField(_("SKU"), max_length=100)
    name = models.CharField(_("item"), max_length=300)
    warehouse = models.CharField(_("warehouse"), max_length=100)
    warehouse_name = models.CharField(_("warehouse name"), max_length=200, blank=True)
    unit = models.CharField(_("unit"), max_length=20, blank=True)
    supplier = models.CharField(_("supplier"), max_length=200, blank=True)
    on_hand = models.DecimalField(_("on hand"), max_digits=16, decimal_places=2)
    reserved = models.DecimalField(_("reserved"), max_digits=16, decimal_places=2, default=0)
    on_order = models.DecimalField(_("on order"), max_digits=16, decimal_places=2, default=0)
    reorder_point = models.DecimalField(_("reorder point"), max_digits=16, decimal_places=2)
    erp_reorder_point = models.DecimalField(_("ERP's fixed reorder point"), max_digits=16, decimal_places=2)
    quantity = models.DecimalField(_("suggested quantity"), max_digits=16, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=16, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    lead_time_days = models.PositiveIntegerField(_("lead time (days)"))
    lead_time_demand = models.FloatField(_("forecast demand over the lead time"))
    safety_stock = models.FloatField(_("safety stock"))
    service_level = models.FloatField(_("service level"))
    days_of_cover = models.FloatField(_("days of cover"))
    method = models.CharField(_("forecast method"), max_length=20)
    weekly_forecast = models.JSONField(_("weekly forecast"), default=list)
    run = models.ForeignKey(ModelRun, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    requisition_number = models.CharField(_("requisition"), max_length=100, blank=True)
    notified_at = models.DateTimeField(_("card sent at"), null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("restock suggestion")
        verbose_name_plural = _("restock suggestions")
        ordering = ["days_of_cover", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "sku", "warehouse"], condition=models.Q(status="open"),
                                    name="foresight_one_open_suggestion"),
        ]

    def __str__(self) -> str:
        return f"{self.sku}@{self.warehouse} +{self.quantity}"

    @property
    def topic(self) -> str:
        return f"restock.{self.pk}"

    @property
    def position(self):
        return self.on_hand - self.reserved + self.on_order


class ReceivableRisk(models.Model):
    """An open invoice's probability of being paid late, with the reasons (feature codes and values)."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DISMISSED = "dismissed", _("dismissed")
        CLOSED = "closed", _("paid or no longer scored")

    connector = models.ForeignKey("erp.Connector", on_delete=models.CASCADE, related_name="+")
    invoice = models.CharField(_("invoice"), max_length=100)
    customer = models.CharField(_("customer"), max_length=200)
    project = models.CharField(_("project"), max_length=100, blank=True)
    sales_rep_login = models.CharField(_("sales rep (ERP login)"), max_length=150, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2)
    outstanding = models.DecimalField(_("outstanding"), max_digits=16, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    due_date = models.DateField(_("due date"))
    probability = models.FloatField(_("probability of paying late"))
    previous_probability = models.FloatField(_("previous probability"), null=True, blank=True)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    run = models.ForeignKey(ModelRun, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True)
    alerted_at = models.DateTimeField(_("alerted at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("receivable at risk")
        verbose_name_plural = _("receivables at risk")
        ordering = ["-probability", "invoice"]
        constraints = [models.UniqueConstraint(fields=["connector", "invoice"], name="foresight_risk_once")]

    def __str__(self) -> str:
        return f"{self.invoice} {self.probability:.0%}"

    @property
    def topic(self) -> str:
        return f"riskalert.{self.pk}"


class ExpenseScore(models.Model):
    """How unusual a pending expense claim is against its requester's and its category's history."""

    document = models.OneToOneField("approvals.ApprovalDocument", on_delete=models.CASCADE,
                                    related_name="expense_score")
    category = models.CharField(_("category"), max_length=60, blank=True)
    score = models.FloatField(_("score"))
    flagged = models.BooleanField(_("flagged"), default=False)
    category_median = models.DecimalField(_("category median"), max_digits=16, decimal_places=2, null=True)
    category_ratio = models.FloatField(_("times the category median"), null=True)
    requester_ratio = models.FloatField(_("times the requester's median"), null=True)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    run = models.ForeignKey(ModelRun, on_delete=models.PROTECT, related_name="+")
    review_group_opened = models.BooleanField(_("review group opened"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("expense score")
        verbose_name_plural = _("expense scores")

    def __str__(self) -> str:
        return f"{self.document_id} {self.score:.1f}"


class Feedback(models.Model):
    """What a person did with a suggestion or alert: kept to judge (and later tune) the models."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=20)  # restock, risk, expense
    object_id = models.PositiveBigIntegerField(_("object"))
    action = models.CharField(_("action"), max_length=30)  # dismissed, requisitioned
    version = models.CharField(_("model version"), max_length=60, blank=True)
    note = models.TextField(_("note"), blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} {self.action}"
