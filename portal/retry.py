"""Retry timing shared by every outbox-like table (deliveries, card edits, ERP writebacks)."""

from __future__ import annotations

import datetime as dt
import random

from django.conf import settings
from django.utils import timezone

MAX_DELAY_SECONDS = 300.0


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter; a platform's Retry-After wins when it asks for longer."""
    base = min(MAX_DELAY_SECONDS, settings.RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    delay = base * (0.5 + random.random() / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_DELAY_SECONDS))
    return delay


def next_attempt_at(delay: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=delay)


def schedule(task, args: list, delay: float) -> None:
    """Run ``task`` again after ``delay`` seconds.

    With tasks running in-process (embedded default) nothing waits in a broker, so the row's
    ``next_*_at`` column is the schedule and ``portal.tasks.requeue_stale_work`` picks it up.
    """
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args=args, countdown=delay)
