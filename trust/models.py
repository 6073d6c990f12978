"""Trust: the hash-chained audit trail, retention policies and legal holds.

``AuditEntry`` rows are written only by ``trust.services.record()`` (under a lock on ``ChainHead``),
never edited, and deleted only by a retention run, which leaves the hash of the last destroyed entry
on the head so that the rest of the chain still verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

GENESIS_HASH = "0" * 64


class AppendOnly(Exception):
    """An audit entry may not be edited or deleted (except by a retention run)."""


class AuditQuerySet(models.QuerySet):
    # Bulk update/delete would bypass the chain; only trust.retention may delete (via _raw_delete).
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("audit entries are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("audit entries are destroyed only by a retention run")


class ChainHead(models.Model):
    """The one row locked while an entry is appended: the newest seq and hash, and the base the
    chain starts from after older entries were destroyed by retention."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    base_seq = models.PositiveBigIntegerField(default=0, help_text=_("seq of the last destroyed entry"))
    base_hash = models.CharField(max_length=64, default=GENESIS_HASH, help_text=_("hash of the last destroyed entry"))

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"#{self.seq} {self.hash[:12]}"


class AuditEntry(models.Model):
    """One thing that happened. ``hash`` = sha256(canonical JSON of the entry including prev_hash)."""

    seq = models.PositiveBigIntegerField(_("sequence"), unique=True)
    at = models.DateTimeField(_("at"), db_index=True)
    # A plain id, not a foreign key: deleting a user must not rewrite (and so break) old entries.
    actor_pk = models.BigIntegerField(_("actor id"), null=True, blank=True, db_index=True)
    actor_name = models.CharField(_("actor"), max_length=150, blank=True, db_index=True)
    action = models.CharField(_("action"), max_length=50, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100, blank=True, db_index=True)
    object_id = models.CharField(_("object id"), max_length=100, blank=True)
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnly("audit entries are destroyed only by a retention run")

    def canonical(self) -> bytes:
        """The bytes the hash covers: every field but the hash itself, in a fixed form."""
        body = {
            "seq": int(self.seq),
            "at": self.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "actor_pk": self.actor_pk,
            "actor_name": self.actor_name,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "summary": self.summary,
            "prev_hash": self.prev_hash,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

class RetentionPolicy(models.Model):
    """Keep records of one kind (optionally on one platform) this many days, then destroy them."""

    kind = models.CharField(_("kind of record"), max_length=50)
    platform = models.CharField(
        _("platform"), max_length=30, blank=True,
        help_text=_("empty: every platform without a policy of its own"),
    )
    keep_days = models.PositiveIntegerField(_("keep (days)"))
    enabled = models.BooleanField(_("enabled"), default=True)
    recall_on_platform = models.BooleanField(
        _("delete on the platform too"), default=True,
        help_text=_("where the adapter can delete or recall a sent message"),
    )
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_run_count = models.PositiveIntegerField(_("destroyed in last run"), default=0)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")
        ordering = ["kind", "platform"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "platform"], name="trust_retention_once_per_kind_platform"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}{'@' + self.platform if self.platform else ''}: {self.keep_days}d"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from trust.retention import kinds

        if self.kind not in kinds():
            raise ValidationError({"kind": _("Unknown kind of record.")})


class LegalHold(models.Model):
    """Suspends destruction of everything related to one document, user or group chat."""

    class Scope(models.TextChoices):
        DOCUMENT = "document", _("document")
        USER = "user", _("user")
        GROUP = "group", _("group chat")

    scope = models.CharField(_("on"), max_length=10, choices=Scope.choices)
    document = models.ForeignKey(
        "approvals.ApprovalDocument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    group_platform = models.CharField(_("group platform"), max_length=30, blank=True)
    group_chat_id = models.CharField(_("group chat id"), max_length=255, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("placed at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="document", document__isnull=False)
                    | models.Q(scope="user", user__isnull=False)
                    | (models.Q(scope="group") & ~models.Q(group_chat_id=""))
                ),
                name="trust_hold_names_its_subject",
            ),
        ]

    def __str__(self) -> str:
        subject = {
            "document": self.document, "user": self.user, "group": f"{self.group_platform}:{self.group_chat_id}",
        }[self.scope]
        return f"{self.get_scope_display()} {subject}"
