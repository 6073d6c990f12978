"""Retention of group-chat records (registered with ``trust.retention`` in ``NotificationsConfig.ready``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models

from im.retention import recall_message
from notifications.models import GroupPost
from trust.retention import Holds, platform_filter


def group_posts_due(cutoff: dt.datetime, platform: str | None, others: list[str], holds: Holds) -> models.QuerySet:
    qs = platform_filter(GroupPost.objects.filter(created_at__lt=cutoff), platform, others, "group__platform")
    for group_platform, chat_id in holds.groups:
        qs = qs.exclude(group__platform=group_platform, group__chat_id=chat_id)
    return qs.select_related("group").order_by("pk")


def group_posts_destroy(rows: list[Any], policy: Any) -> int:
    gone = []
    for post in rows:
        if post.message_id and policy.recall_on_platform and not recall_message(
            post.group.platform, post.group.chat_id, post.message_id
        ):
            continue
        gone.append(post.pk)
    GroupPost.objects.filter(pk__in=gone).delete()
    return len(gone)
