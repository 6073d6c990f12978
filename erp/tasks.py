"""ERP work in workers: handle stored events in batches; poll the connections that have no webhooks (Tryton)."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings as django_settings
from django.utils import timezone

from erp.models import ConnectorSettings

logger = logging.getLogger(__name__)
POLLED_KINDS = {"tryton"}


@shared_task(acks_late=True)
def handle_events(event_ids: list[int]) -> int:
    """Events the intake stored (``received``): one batch of the oldest received ones, not only
    ``event_ids`` (erp/handling.py). It answers the doorbell before it claims (erp/doorbell.py), and a
    full batch rings it again so that another process takes the next one while this one sends."""
    from erp import doorbell
    from erp.handling import handle_received
    from erp.intake import tell_workers

    doorbell.answer()
    # In-process (eager) the task would run inside this one's transaction: no second process to wake.
    return handle_received(when_full=None if django_settings.CELERY_TASK_ALWAYS_EAGER else tell_workers)


@shared_task(acks_late=True)
def poll_connectors() -> dict[str, int]:
    """Poll each enabled polled connection whose interval has passed (beat runs this often)."""
    from erp.connectors.tryton.poll import poll

    now = timezone.now()
    accepted: dict[str, int] = {}
    for settings in ConnectorSettings.objects.select_related("connector").filter(
        connector__enabled=True, connector__kind__in=POLLED_KINDS, poll_interval__gt=0
    ):
        due = settings.last_polled_at is None or settings.last_polled_at + dt.timedelta(
            seconds=settings.poll_interval) <= now
        if not due:
            continue
        try:
            accepted[settings.connector.slug] = poll(settings).accepted
        except Exception:
            # One unreachable ERP must not stop the others; the error is on its settings row.
            logger.exception("polling %s failed", settings.connector.slug)
    return accepted
