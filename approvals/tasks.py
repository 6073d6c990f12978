from celery import shared_task

from approvals import services
from portal.retry import schedule


@shared_task(acks_late=True)
def write_back(decision_id: int) -> None:
    delay = services.write_back(decision_id)
    if delay is not None:
        schedule(write_back, [decision_id], delay)
