"""Boards under the retention policies and legal holds: what was done on a board (members' and
guests' actions alike) and the guest passes, like any chat record of the group."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def _held(qs: models.QuerySet, holds: Any) -> models.QuerySet:
    for platform, chat_id in holds.groups:
        qs = qs.exclude(group__platform=platform, group__chat_id=chat_id)
    return qs


def _activity_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Any) -> models.QuerySet:
    from boards.models import BoardActivity
    from trust.retention import platform_filter

    qs = platform_filter(BoardActivity.objects.filter(created_at__lt=cutoff), platform, others, "group__platform")
    if holds.user_ids:
        qs = qs.exclude(actor_id__in=holds.user_ids)
    return _held(qs, holds).order_by("pk")


def _passes_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Any) -> models.QuerySet:
    """Passes that ended (expired or revoked) before the cutoff; a live pass is never destroyed."""
    from boards.models import GuestPass
    from trust.retention import platform_filter

    ended = Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)
    qs = platform_filter(GuestPass.objects.filter(ended), platform, others, "group__platform")
    return _held(qs, holds).order_by("pk")


def register() -> None:
    from trust.retention import delete_rows, register_retention_kind

    register_retention_kind("board_activity", _activity_due, delete_rows,
                            label=_("board activity (members' and guests' actions on group boards)"),
                            per_platform=True)
    register_retention_kind("guest_passes", _passes_due, delete_rows,
                            label=_("guest passes to group boards (ended ones)"), per_platform=True)
