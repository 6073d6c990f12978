from celery import shared_task

from im import services
from portal.retry import schedule


@shared_task(acks_late=True)
def send_delivery(delivery_ids: int | list[int]) -> None:
    """One outbox row, or a batch (the rows one ``write_outbox`` call added)."""
    ids = [delivery_ids] if isinstance(delivery_ids, int) else list(delivery_ids)
    for delivery_id, delay in services.send_batch(ids).items():
        schedule(send_delivery, [delivery_id], delay)


@shared_task(acks_late=True)
def update_message(ref_id: int) -> None:
    delay = services.update_message(ref_id)
    if delay is not None:
        schedule(update_message, [ref_id], delay)


@shared_task(acks_late=True)
def handle_callback(platform: str, event: dict) -> None:
    """A verified inbound IM callback (im/inbound.py), acted on after the platform got its answer."""
    from im import inbound

    inbound.handle(platform, event)
