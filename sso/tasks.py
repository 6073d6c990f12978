from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def sync_all_erp_identities() -> list[str]:
    """Beat: every enabled connector's accounts and roles into the portal."""
    from erp.models import Connector
    from sso.services import sync_erp_identities

    return [str(sync_erp_identities(connector)) for connector in Connector.objects.filter(enabled=True)]
