from celery import shared_task

from approvals import services
from approvals.models import Decision
from portal.retry import schedule


@shared_task(acks_late=True)
def write_back(decision_id: int, attempt: int | None = None) -> None:
    """One attempt at a decision's writeback; a retry is queued as the next attempt by number, so a
    redelivered copy of it does not count twice (``services.write_back``)."""
    delay = services.write_back(decision_id, attempt)
    if delay is not None:
        made = Decision.objects.filter(pk=decision_id).values_list("writeback_attempts", flat=True).first() or 0
        schedule(write_back, [decision_id, made + 1], delay)
