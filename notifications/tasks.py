"""Celery tasks: group chats on the platform (after commit) and the periodic follow-up tick (beat)."""

from __future__ import annotations

from celery import shared_task

from notifications import groups, services


@shared_task(acks_late=True)
def open_group(group_id: int) -> None:
    groups.open_on_platform(group_id)


@shared_task(acks_late=True)
def send_group_post(post_id: int) -> None:
    groups.send_post(post_id)


@shared_task(acks_late=True)
def archive_group(group_id: int) -> None:
    groups.archive_on_platform(group_id)


@shared_task
def tick() -> dict[str, int]:
    """Held cards whose quiet hours ended, digests that are due, reminders and escalations."""
    return services.tick()
