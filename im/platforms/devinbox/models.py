from django.conf import settings
from django.db import models


class DevInboxMessage(models.Model):
    """A card as an IM client would hold it: sent once, then edited in place."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=200, unique=True)
    card = models.JSONField()
    revision = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "dev inbox message"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} → {self.recipient}: {self.card.get('title', '')}"


class DevInboxGroup(models.Model):
    """A group chat as the dev inbox's "platform" keeps it; members by address (user pk or ext:email)."""

    idempotency_key = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    members = models.JSONField(default=list)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "dev inbox group"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class DevInboxGroupMessage(models.Model):
    """A card or a pinned widget in a dev inbox group."""

    group = models.ForeignKey(DevInboxGroup, on_delete=models.CASCADE, related_name="messages")
    idempotency_key = models.CharField(max_length=200, unique=True)
    card = models.JSONField(null=True, blank=True)
    widget_title = models.CharField(max_length=200, blank=True)
    widget_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "dev inbox group message"
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.group}: {(self.card or {}).get('title', self.widget_title)}"
