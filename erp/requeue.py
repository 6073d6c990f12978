"""What the safety net (``portal.tasks.requeue_stale_work``) re-queues of erp: stored events whose
handling task was lost (a broker restart)."""

from __future__ import annotations

from erp.handling import BATCH_SIZE
from erp.models import InboundEvent
from portal.tasks import StaleWindow


def claim_received_events(window: StaleWindow) -> list[int]:
    """One event id per batch of stale received events: each queued task handles a whole batch of the
    oldest received ones (erp/handling.py). No lease is needed: handling claims them with SKIP LOCKED,
    and a handled event is no longer received."""
    stale = list(
        InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED, received_at__lte=window.stale)
        .order_by("pk").values_list("pk", flat=True)[:500]
    )
    return stale[::BATCH_SIZE]
