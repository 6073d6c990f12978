"""Celery task: the periodic follow-up tick (beat). Group chats on the platform are outbox rows (im)."""

from __future__ import annotations

from celery import shared_task

from notifications import services


@shared_task
def tick() -> dict[str, int]:
    """Held cards whose quiet hours ended, digests that are due, reminders and escalations."""
    return services.tick()
