"""Boards of temporary groups: guest passes for external members, what was done from a board, and
who is looking at it now."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Why a pass was revoked: stored as the key, shown in the reader's language.
REVOKED_REASONS = {
    "group archived": _("the group was archived"),
    "removed from the group": _("removed from the group"),
    "re-invited": _("a newer invitation replaced it"),
    "revoked by an administrator": _("revoked by an administrator"),
}


class GuestPass(models.Model):
    """An external member's pass to one group's board: invited by email with a one-time code, bound
    to that group and address, expiring, revoked when the group is archived or the member removed.
    Not a portal account: it opens that board and nothing else."""

    group = models.ForeignKey("notifications.ChatGroup", on_delete=models.CASCADE, related_name="guest_passes",
                              verbose_name=_("group chat"))
    member = models.ForeignKey("notifications.ChatGroupMember", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", verbose_name=_("group member"))
    name = models.CharField(_("name"), max_length=150)
    email = models.EmailField(_("email"))
    code_digest = models.CharField(max_length=64, blank=True,
                                   help_text=_("HMAC of the one-time code; emptied once used"))
    code_expires_at = models.DateTimeField(_("code valid until"))
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    # Changes at every redemption: the browser's signed cookie names it, so an older cookie is void.
    nonce = models.CharField(max_length=32, blank=True)
    expires_at = models.DateTimeField(_("valid until"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_reason = models.CharField(_("why revoked"), max_length=200, blank=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("guest pass")
        verbose_name_plural = _("guest passes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}> → {self.group_id}"

    def refusal(self, now=None) -> str:
        """Why this pass opens nothing now, or "" when it is good."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            why = REVOKED_REASONS.get(self.revoked_reason, self.revoked_reason)
            return str(_("This guest pass was revoked (%(why)s).") % {"why": why})
        if self.expires_at <= now:
            return str(_("This guest pass has expired."))
        if self.group.state != "open":
            return str(_("This group is archived."))
        return ""


class BoardActivity(models.Model):
    """One action taken from a board (or refused there), by a member or a guest: the board's own
    record beside the audit chain; kept and destroyed with the group's records (retention, legal hold)."""

    class Outcome(models.TextChoices):
        DONE = "done", _("done")
        REFUSED = "refused", _("refused")
        STALE = "stale", _("refused: changed meanwhile")
        UNSUPPORTED = "unsupported", _("not supported by the ERP")

    group = models.ForeignKey("notifications.ChatGroup", on_delete=models.CASCADE, related_name="board_activity")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    guest = models.ForeignKey(GuestPass, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity")
    actor_name = models.CharField(max_length=150)
    action = models.CharField(_("action"), max_length=40)
    object_ref = models.CharField(_("object"), max_length=100, blank=True)
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    detail = models.TextField(_("detail"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The acting form's key, scoped by action and actor: a repeated POST finds this row (empty: refusals).
    key = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = _("board activity")
        verbose_name_plural = _("board activity")
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["group", "key"], condition=~models.Q(key=""),
                                               name="board_activity_once_per_key")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.object_ref}: {self.outcome}"


class BoardPresence(models.Model):
    """A socket watching a board now: one row per websocket subscription, gone when it closes, or
    swept (``boards.tasks.sweep_presence``) when its process died and its heartbeat stopped."""

    group = models.ForeignKey("notifications.ChatGroup", on_delete=models.CASCADE, related_name="+")
    channel_name = models.CharField(max_length=200)
    viewer_name = models.CharField(max_length=150)
    viewer_key = models.CharField(max_length=60, help_text="user:<pk> or guest:<pk>")
    since = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="the socket's last heartbeat")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "channel_name"], name="boards_presence_once")]

    def __str__(self) -> str:
        return f"{self.viewer_name} @ {self.group_id}"


class DevMailMessage(models.Model):
    """An email as the dev mailbox (/dev/mail/) holds it: the demo's stand-in for a mail server."""

    to = models.CharField(max_length=500)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "dev mailbox message"
        ordering = ["-sent_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.to}: {self.subject}"
