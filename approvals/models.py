from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from sso.models import display_name


class ApprovalDocument(models.Model):
    """The portal's mirror of an ERP document waiting for (or past) a decision."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        CANCELLED = "cancelled", _("cancelled")

    connector = models.ForeignKey("erp.Connector", on_delete=models.PROTECT, related_name="documents")
    external_id = models.CharField(_("ERP number"), max_length=100)
    kind = models.CharField(_("kind"), max_length=50)
    title = models.CharField(_("title"), max_length=300)
    amount = models.DecimalField(_("amount"), max_digits=16, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    project = models.CharField(_("project"), max_length=100, blank=True)
    cost_center = models.CharField(_("cost center"), max_length=100, blank=True)
    department = models.CharField(_("department"), max_length=150, blank=True)
    urgent = models.BooleanField(_("urgent"), default=False)
    urgent_reason = models.CharField(_("why urgent"), max_length=500, blank=True,
                                     help_text=_("the reason the ERP gave for the urgency"))
    requester_login = models.CharField(_("requester (ERP login)"), max_length=150)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    # Multi-step approvals: the ERP asks again with a higher step once a step is approved; the
    # assignments are then the new step's approvers, and each step gets its own Decision.
    step = models.PositiveIntegerField(_("step"), default=1)
    # Bumped on every change; pages send it back so that a stale page cannot decide.
    version = models.PositiveIntegerField(default=1)
    decided_by_name = models.CharField(_("decided by"), max_length=150, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("approval document")
        verbose_name_plural = _("approval documents")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "external_id"], name="approvals_doc_once_per_erp"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("approvals:detail", args=[self.pk])

    def approvers_read(self) -> list | None:
        """The approvers (assignments) when they were read with the document (``prefetch_related``),
        else None: the caller asks the database."""
        if "assignments" in getattr(self, "_prefetched_objects_cache", {}):
            return list(self.assignments.all())
        return None

    @property
    def topic(self) -> str:
        return f"approval.{self.pk}"

    # What people read for each status (the choices' labels are the stored words, kept for admin
    # filters and migrations): "Waiting for a decision", not "pending".
    STATUS_LABELS = {
        "pending": _("Waiting for a decision"),
        "approved": _("Approved"),
        "rejected": _("Rejected"),
        "cancelled": _("Cancelled"),
    }

    @property
    def status_label(self) -> str:
        return str(self.STATUS_LABELS.get(self.status, self.status))

    @property
    def requester_name(self) -> str:
        """张三, not zhang.san: the linked user's name, else the ERP login."""
        return display_name(self.requester) if self.requester_id else self.requester_login


class ApprovalLine(models.Model):
    document = models.ForeignKey(ApprovalDocument, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=300)
    qty = models.DecimalField(max_digits=16, decimal_places=4)
    unit_price = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.name} × {self.qty}"

    @property
    def total(self):
        return (self.qty * self.unit_price).quantize(self.unit_price)


class ApprovalAssignment(models.Model):
    """An approver named by the ERP. ``user`` is empty while the ERP login is linked to nobody."""

    document = models.ForeignKey(ApprovalDocument, on_delete=models.CASCADE, related_name="assignments")
    erp_login = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "erp_login"], name="approvals_assignment_once"),
        ]

    def __str__(self) -> str:
        return f"{self.erp_login} on {self.document.external_id}"

    @property
    def name(self) -> str:
        return display_name(self.user) if self.user_id else self.erp_login


class Decision(models.Model):
    """The one decision on a document, and the state of writing it back to the ERP."""

    class Outcome(models.TextChoices):
        APPROVED = "approved", _("approve")
        REJECTED = "rejected", _("reject")

    class Writeback(models.TextChoices):
        PENDING = "pending", _("writing back")
        DONE = "done", _("written back")
        FAILED = "failed", _("writeback failed")
        CONFLICT = "conflict", _("conflict in the ERP")

    document = models.ForeignKey(ApprovalDocument, on_delete=models.CASCADE, related_name="decisions")
    step = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=100, unique=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    comment = models.TextField(blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_erp_login = models.CharField(max_length=150)
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("the approver who delegated this decision"),
    )
    via = models.CharField(max_length=30, default="page", help_text=_("page, api or an IM platform"))
    created_at = models.DateTimeField(auto_now_add=True)
    writeback_status = models.CharField(
        max_length=10, choices=Writeback.choices, default=Writeback.PENDING, db_index=True
    )
    writeback_attempts = models.PositiveIntegerField(default=0)
    writeback_error = models.TextField(blank=True)
    writeback_next_at = models.DateTimeField(null=True, blank=True)
    written_back_at = models.DateTimeField(null=True, blank=True)
    erp_reference = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["document", "step"], name="approvals_one_decision_per_step"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} {self.document.external_id}"


class HistoryEntry(models.Model):
    """What happened to a document, for its page: requested, decided, written back, …"""

    document = models.ForeignKey(ApprovalDocument, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(auto_now_add=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=30)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.document.external_id} {self.action}"

    ACTION_LABELS = {
        "requested": _("requested"),
        "next_step": _("next approval step"),
        "approved": _("approved"),
        "rejected": _("rejected"),
        "erp_approved": _("approved in the ERP"),
        "erp_rejected": _("rejected in the ERP"),
        "erp_cancelled": _("cancelled in the ERP"),
        "writeback_done": _("written back to the ERP"),
        "writeback_failed": _("writeback to the ERP failed"),
        "writeback_conflict": _("conflict in the ERP"),
        "unrouted": _("could not notify"),
        "ignored": _("ignored"),
    }

    @property
    def action_label(self) -> str:
        return str(self.ACTION_LABELS.get(self.action, self.action))

    @property
    def note_label(self) -> str:
        """The note as a person reads it: a writeback's bare ERP reference ("2") gets its name."""
        if self.action == "writeback_done" and self.note:
            return _("ERP reference %(reference)s") % {"reference": self.note}
        return self.note
