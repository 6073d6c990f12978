from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def sync_all_erp_identities() -> list[str]:
    """Beat: every enabled connector's accounts and roles into the portal."""
    from erp.models import Connector
    from sso.services import sync_erp_identities

    reports = []
    for connector in Connector.objects.filter(enabled=True):
        try:
            reports.append(str(sync_erp_identities(connector)))
        except Exception:
            # One unreachable ERP (or one that lists no accounts, the generic connector) must not stop
            # the others; its identities keep their roles until it answers.
            logger.exception("syncing ERP identities of %s failed", connector.slug)
    return reports
