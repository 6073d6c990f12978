"""Read side of im: the auditors' export of deliveries (registered with trust in ``ImConfig.ready``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from im.models import Delivery

DELIVERY_EXPORT_FIELDS = ["kind", "id", "at", "topic", "recipient", "platform", "status", "attempts", "sent_at"]


def deliveries_for_export(start: Any, end: Any) -> Iterator[dict]:
    """Deliveries created in [start, end): to whom, where, in which state; never the card's text."""
    deliveries = (
        Delivery.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("recipient")
        .order_by("created_at", "pk")
    )
    for v in deliveries.iterator(chunk_size=1000):
        yield {
            "kind": "delivery", "id": v.pk, "at": v.created_at, "topic": v.topic,
            "recipient": v.recipient.get_username(), "platform": v.platform, "status": v.status,
            "attempts": v.attempts, "sent_at": v.sent_at,
        }
