from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Delivery(models.Model):
    """Outbox row: one card for one recipient on one platform, or one operation on a platform's group
    chat (open, post, archive), written by ``im.services.write_outbox`` in the transaction that caused
    it and sent by a Celery task. Nothing leaves this table except by being sent or by an admin
    deciding so; dead letters stay visible with the platform's reason."""

    class Kind(models.TextChoices):
        CARD = "card", _("card to a person")
        GROUP_OPEN = "group_open", _("open a group chat")
        GROUP_POST = "group_post", _("post to a group chat")
        GROUP_ARCHIVE = "group_archive", _("archive a group chat")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        DEAD = "dead", _("failed (dead letter)")
        SKIPPED = "skipped", _("skipped (nothing to show)")

    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.CARD)
    topic = models.CharField(max_length=100, db_index=True)
    reason = models.CharField(_("why this person"), max_length=200, blank=True)
    # Cards have a recipient; group operations have none and name their object in ``ref`` instead.
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="deliveries",
                                  null=True, blank=True)
    ref = models.CharField(_("object of the operation"), max_length=100, blank=True)
    platform = models.CharField(max_length=30)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a sender has claimed the row (im.services.send_batch): the send runs outside any
    # transaction, so this, not a row lock, keeps a second sender away; it expires if the sender dies.
    lease_until = models.DateTimeField(null=True, blank=True)
    card = models.JSONField(null=True, blank=True, help_text=_("The card as last rendered."))
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.topic} → {self.recipient or self.get_kind_display()} ({self.platform})"


class MessageRef(models.Model):
    """A message that was sent, kept so that it can be edited when its document changes."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="message")
    topic = models.CharField(max_length=100, db_index=True)
    platform = models.CharField(max_length=30)
    address = models.CharField(max_length=200)
    message_id = models.CharField(max_length=200)
    # The platform's handle for recalling the message when it differs from message_id (trust.retention).
    recall_id = models.CharField(max_length=200, blank=True, default="")
    # Set when the document changed and the sent card must be edited; cleared once it is.
    needs_update = models.BooleanField(default=False, db_index=True)
    update_attempts = models.PositiveIntegerField(default=0)
    update_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sent message")
        verbose_name_plural = _("sent messages")
        constraints = [
            models.UniqueConstraint(fields=["platform", "message_id"], name="im_message_once_per_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.message_id}"
