"""Retention of ERP event payloads (registered with ``trust.retention`` in ``ErpConfig.ready``)."""

from __future__ import annotations

import datetime as dt

from django.db import models

from erp.models import InboundEvent
from trust.retention import Holds


def event_payloads_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Holds) -> models.QuerySet:
    qs = InboundEvent.objects.filter(received_at__lt=cutoff)
    if holds.document_numbers:
        # By primary key: a plain exclude() on a JSON key would also drop events without that key (NULL).
        held = InboundEvent.objects.filter(data__document__id__in=list(holds.document_numbers)).values("pk")
        qs = qs.exclude(pk__in=held)
    return qs.order_by("pk")
