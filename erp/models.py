from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _


def new_webhook_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Connector(models.Model):
    """One configured ERP. Its slug is the path segment of the event intake URL."""

    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=30, help_text=_("Which connector module talks to it."))
    enabled = models.BooleanField(_("enabled"), default=True)
    webhook_secret = models.CharField(
        _("webhook secret"),
        max_length=200,
        default=new_webhook_secret,
        help_text=_("Standard Webhooks secret (whsec_…) the ERP signs its events with."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ERP connector")
        verbose_name_plural = _("ERP connectors")

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class InboundEvent(models.Model):
    """An ERP event accepted by the intake. ``webhook_id`` makes a redelivery a no-op.

    With a broker the intake only stores it (``received``) and workers handle it in batches
    (``erp.handling``): ``processed``, or ``failed`` with the error, shown in admin and retried from there."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("received, not handled yet")
        PROCESSED = "processed", _("processed")
        FAILED = "failed", _("handling failed")
        IGNORED = "ignored", _("ignored (no handler)")

    connector = models.ForeignKey(Connector, on_delete=models.PROTECT, related_name="events")
    webhook_id = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=200, db_index=True)
    source = models.CharField(max_length=500)
    subject = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("inbound ERP event")
        verbose_name_plural = _("inbound ERP events")
        constraints = [
            models.UniqueConstraint(fields=["connector", "webhook_id"], name="erp_event_once_per_webhook_id"),
        ]
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class ConnectorSettings(models.Model):
    """How the portal reaches one ERP that it reads and writes to (Tryton, Odoo, ERPNext, generic).

    The password (Odoo: API key; ERPNext: API secret; generic: the auth header's token) is stored
    encrypted (``trust.crypto``); set it with ``set_password``. ``cursor`` is the ERP's own clock of the
    newest change already polled. ``options`` holds what only one kind needs (the generic
    connector's mappings, ERPNext's workflow names), validated by that kind's admin form.
    """

    EVENT_TYPE_CHOICES = [
        ("erp.approval.requested", "erp.approval.requested"),
        ("erp.approval.decided", "erp.approval.decided"),
        ("erp.stock.changed", "erp.stock.changed"),
        ("erp.order.status_changed", "erp.order.status_changed"),
        ("erp.receivable.changed", "erp.receivable.changed"),
    ]
    DEFAULT_EVENT_TYPES = ["erp.approval.requested", "erp.approval.decided", "erp.stock.changed"]

    connector = models.OneToOneField(Connector, on_delete=models.CASCADE, related_name="settings")
    base_url = models.URLField(_("base URL"), help_text=_("e.g. https://erp.example.com:8000"))
    database = models.CharField(_("database name"), max_length=100, blank=True)
    login = models.CharField(_("login"), max_length=150, blank=True, help_text=_("ERPNext: the API key."))
    password_encrypted = models.TextField(_("password (encrypted)"), blank=True, editable=False)
    poll_interval = models.PositiveIntegerField(
        _("poll interval (seconds)"), default=60, help_text=_("0 switches polling off.")
    )
    event_types = models.JSONField(
        _("event types to emit"), default=list, blank=True, help_text=_("Empty: the default set.")
    )
    options = models.JSONField(_("options"), default=dict, blank=True)
    cursor = models.DateTimeField(_("cursor"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last polled at"), null=True, blank=True)
    last_poll_error = models.TextField(_("last poll error"), blank=True)

    class Meta:
        verbose_name = _("connection settings")
        verbose_name_plural = _("connection settings")

    def __str__(self) -> str:
        return f"{self.login}@{self.base_url}/{self.database}"

    def set_password(self, password: str) -> None:
        from trust.crypto import encrypt

        self.password_encrypted = encrypt(password)

    def get_password(self) -> str:
        from trust.crypto import decrypt

        return decrypt(self.password_encrypted)

    def emits(self, event_type: str) -> bool:
        return event_type in (self.event_types or self.DEFAULT_EVENT_TYPES)
