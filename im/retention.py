"""Retention of sent cards (registered with ``trust.retention`` in ``ImConfig.ready``), and the one
way retention asks a platform to recall a message: the adapter's ``delete_message``."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import models

from im.models import Delivery, MessageRef
from im.platforms import get_adapter
from im.platforms.base import RECALL, TransportError, Unsupported, supports
from trust.retention import Holds, platform_filter

logger = logging.getLogger(__name__)


def recall_message(platform: str, address: str, message_id: str, *, recall_id: str = "") -> bool:
    """Ask the platform to delete a sent message. True: it is gone, or never will be (no adapter any
    more, or the platform cannot delete); False: the platform is down, try again at the next run."""
    try:
        adapter = get_adapter(platform)
    except LookupError:
        return True
    if not supports(adapter, RECALL):
        return True
    try:
        adapter.delete_message(address, message_id, recall_id=recall_id)
    except Unsupported:
        return True
    except TransportError as exc:
        logger.warning("could not delete %s:%s on the platform: %s", platform, message_id, exc)
        return exc.permanent  # a message already gone is fine; a platform outage is retried next run
    return True


def sent_cards_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Holds) -> models.QuerySet:
    qs = Delivery.objects.filter(created_at__lt=cutoff).exclude(status=Delivery.Status.QUEUED)
    qs = platform_filter(qs, platform, others)
    if holds.user_ids:
        qs = qs.exclude(recipient_id__in=holds.user_ids)
    if holds.document_ids:
        qs = qs.exclude(topic__in=[f"approval.{pk}" for pk in holds.document_ids])
    return qs.select_related("message").order_by("pk")


def sent_cards_destroy(rows: list[Any], policy: Any) -> int:
    gone = []
    for delivery in rows:
        try:
            ref = delivery.message
        except MessageRef.DoesNotExist:
            ref = None
        if ref is not None and policy.recall_on_platform and not recall_message(
            ref.platform, ref.address, ref.message_id, recall_id=ref.recall_id
        ):
            continue
        gone.append(delivery.pk)
    Delivery.objects.filter(pk__in=gone).delete()  # MessageRef cascades
    return len(gone)
