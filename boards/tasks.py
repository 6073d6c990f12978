"""Celery task (beat): sweep the presence rows of sockets whose process died."""

from __future__ import annotations

from celery import shared_task

from boards import presence


@shared_task
def sweep_presence() -> int:
    return presence.sweep()
