"""Retention of bot exchanges (registered with ``trust.retention`` in ``BotConfig.ready``)."""

from __future__ import annotations

import datetime as dt

from django.db import models

from bot.models import BotExchange
from trust.retention import Holds


def bot_exchanges_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Holds) -> models.QuerySet:
    qs = BotExchange.objects.filter(created_at__lt=cutoff)
    if platform:
        qs = qs.filter(channel=platform)
    elif others:
        qs = qs.exclude(channel__in=others)
    if holds.user_ids:
        qs = qs.exclude(user_id__in=holds.user_ids)
    return qs.order_by("pk")
