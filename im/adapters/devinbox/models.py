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
