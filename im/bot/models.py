from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BotExchange(models.Model):
    """One question and the bot's answer, with the parsed intent: for improving the parser, for the
    reply card (topic ``bot.<pk>``) and for a pending confirmation (approve via the bot)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.CharField(_("conversation"), max_length=200, blank=True)
    channel = models.CharField(_("channel"), max_length=30, default="api", help_text=_("api, devinbox, matrix…"))
    text = models.TextField(_("question"))
    intent = models.CharField(_("intent"), max_length=50, db_index=True)
    source = models.CharField(_("understood by"), max_length=20, default="parser", help_text=_("parser or model"))
    entities = models.JSONField(_("entities"), default=dict, blank=True)
    answer = models.TextField(_("answer"), blank=True)
    card = models.JSONField(_("card"), null=True, blank=True)
    private_card = models.JSONField(_("private part"), null=True, blank=True)
    audience_size = models.PositiveIntegerField(_("audience"), default=0)
    # A decision the asker still has to confirm (document id, outcome, comment), then its result.
    pending_action = models.JSONField(null=True, blank=True)
    action_result = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("bot exchange")
        verbose_name_plural = _("bot exchanges")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} · {self.intent}: {self.text[:40]}"

    @property
    def topic(self) -> str:
        return f"bot.{self.pk}"
