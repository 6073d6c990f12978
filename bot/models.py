from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from trust.fields import EncryptedTextField


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


def validate_endpoint(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("Enter an http:// or https:// URL with a host name."))


class ModelBackend(models.Model):
    """The optional chat-completions backend, set in admin (one row). While no row is enabled the
    ``BOT_MODEL_*`` settings apply (off when ``BOT_MODEL_URL`` is empty)."""

    enabled = models.BooleanField(_("enabled"), default=False)
    # A CharField: in-house endpoints often have single-label host names (http://llm:8000/v1) that
    # URLField's validator refuses.
    base_url = models.CharField(
        _("endpoint"), max_length=300, validators=[validate_endpoint],
        help_text=_("OpenAI-compatible base URL, e.g. https://llm.example.com/v1 (…/chat/completions is added)"),
    )
    model_name = models.CharField(_("model"), max_length=100)
    api_key = EncryptedTextField(_("API key"), blank=True, help_text=_("stored encrypted; leave empty if none"))
    timeout = models.FloatField(_("timeout (seconds)"), default=5.0,
                                validators=[MinValueValidator(0.5), MaxValueValidator(60)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("bot model backend")
        verbose_name_plural = _("bot model backend")

    def __str__(self) -> str:
        return f"{self.model_name} @ {self.base_url}"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1  # one backend: a second "add" edits the first
        super().save(*args, **kwargs)
