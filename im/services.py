"""Delivery: put cards in the outbox, send them, keep their references, edit them when things change.

Permissions are not decided here: card builders (registered per topic kind) call ``authorize()``
and return None for a recipient who may see nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from im import ratelimit
from im.adapters import enabled_platforms, get_adapter
from im.adapters.base import SentMessage, TransportError
from im.cards import action_handler_for, build_card
from im.models import Delivery, MessageRef
from portal.observability import hooks as observe
from portal.retry import backoff_seconds, next_attempt_at
from portal.tasks import queue_after_commit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    user: Any
    reason: str


def enqueue_cards(topic: str, recipients: list[Recipient], dedupe_prefix: str) -> list[Delivery]:
    """One outbox row per (recipient, platform), in the caller's transaction; sent after commit.

    The same ``dedupe_prefix`` twice (a redelivered event) adds nothing.
    """
    from im import tasks

    created = []
    for recipient in recipients:
        for platform in enabled_platforms():
            delivery, is_new = Delivery.objects.get_or_create(
                dedupe_key=f"{dedupe_prefix}:{recipient.user.pk}:{platform}",
                defaults={
                    "topic": topic,
                    "recipient": recipient.user,
                    "platform": platform,
                    "reason": recipient.reason[:200],
                },
            )
            if is_new:
                created.append(delivery)
                queue_after_commit(tasks.send_delivery, delivery.pk)
    return created


# How long a worker keeps trying to record a card the platform has accepted when the database went away
# in between (see send_delivery); past that the row is sent again later and the idempotency key is all
# that stops a second card.
RECORD_SENT_SECONDS = 60.0


def send_delivery(delivery_id: int) -> float | None:
    """Send one outbox row. Returns seconds to wait before trying again, or None when finished."""
    accepted: list[tuple[str, SentMessage, dict]] = []  # filled once the platform has taken the card
    try:
        return _send_delivery(delivery_id, accepted)
    except DatabaseError:
        if not accepted or connection.in_atomic_block:  # in a caller's transaction, lost anyway
            raise
        # The platform answered 2xx, then the database failed before the row said so (a Postgres restart,
        # a dropped connection): the transaction is gone and the row is still queued, so it would be sent
        # again. Record what happened instead, as soon as the database is back.
        _record_sent_after_outage(delivery_id, *accepted[0])
        return None


def _send_delivery(delivery_id: int, accepted: list[tuple[str, SentMessage, dict]]) -> float | None:
    with transaction.atomic():
        delivery = (
            # of=("self",): lock the outbox row only. select_related() would lock the recipient's user
            # row too: a second card to the same person was then skipped (left to the safety net), and
            # decide() deadlocked with a send on that row (its deferred foreign-key check at commit).
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient")
            .filter(pk=delivery_id, status=Delivery.Status.QUEUED)
            .first()
        )
        if delivery is None:
            return None  # sent already, dead, or being sent by another worker right now
        observe.delivery_started(delivery)
        delivery.attempts += 1
        adapter = get_adapter(delivery.platform)
        card = build_card(delivery.topic, delivery.recipient, delivery.platform)
        if card is None:
            delivery.status = Delivery.Status.SKIPPED
            delivery.last_error = "the recipient may no longer see this"
            delivery.save()
            observe.card_outcome(delivery, "skipped")
            return None
        delivery.card = card.to_dict()
        address = adapter.address_of(delivery.recipient)
        if address is None:
            return _give_up(delivery, f"{delivery.recipient} has no linked {delivery.platform} account")
        # The platform's rate bucket first: when it is empty the row waits in the outbox (not a failed
        # attempt), so a burst is spread over time instead of meeting the platform's 429.
        wait = ratelimit.acquire(delivery.platform, address)
        if wait > 0:
            delivery.attempts -= 1
            delivery.next_attempt_at = next_attempt_at(wait)
            delivery.save()
            return wait
        try:
            # The delivery's key makes the platform call idempotent where the platform allows it,
            # so a retry after a crash does not post the card twice.
            sent = adapter.send_card(address, card, idempotency_key=delivery.dedupe_key)
        except TransportError as exc:
            return _failed(delivery, exc)
        accepted.append((address, sent, delivery.card))
        _mark_sent(delivery, address, sent)
    return None


def _mark_sent(delivery: Delivery, address: str, sent: SentMessage) -> None:
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = timezone.now()
    delivery.last_error = ""
    delivery.next_attempt_at = None
    delivery.save()
    observe.card_outcome(delivery, "sent")
    MessageRef.objects.update_or_create(
        delivery=delivery,
        defaults={
            "topic": delivery.topic,
            "platform": delivery.platform,
            "address": address,
            "message_id": sent.message_id,
            "recall_id": sent.recall_id,
        },
    )


def _record_sent_after_outage(delivery_id: int, address: str, sent: SentMessage, card: dict) -> None:
    deadline = time.monotonic() + RECORD_SENT_SECONDS
    while True:
        connection.close()  # the broken one; the next query opens a new connection
        try:
            with transaction.atomic():
                delivery = (
                    Delivery.objects.select_for_update(of=("self",))
                    .filter(pk=delivery_id, status=Delivery.Status.QUEUED)
                    .first()
                )
                if delivery is not None:  # else another worker recorded it meanwhile
                    delivery.attempts += 1  # the attempt that sent it was rolled back with the rest
                    delivery.card = card
                    _mark_sent(delivery, address, sent)
            logger.warning("delivery %s: sent, and recorded after a database outage", delivery_id)
            return
        except DatabaseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _failed(delivery: Delivery, exc: TransportError) -> float | None:
    if exc.permanent or delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        return _give_up(delivery, str(exc))
    delay = backoff_seconds(delivery.attempts, exc.retry_after)
    delivery.last_error = str(exc)
    delivery.next_attempt_at = next_attempt_at(delay)
    delivery.save()
    logger.warning("delivery %s failed, retry in %.0fs: %s", delivery.pk, delay, exc)
    observe.card_outcome(delivery, "retry")
    return delay


def _give_up(delivery: Delivery, reason: str) -> None:
    delivery.status = Delivery.Status.DEAD
    delivery.last_error = reason
    delivery.next_attempt_at = None
    delivery.save()
    logger.error("delivery %s is a dead letter: %s", delivery.pk, reason)
    observe.card_outcome(delivery, "dead")
    return None


def resend(delivery: Delivery) -> None:
    """Put a dead letter back in the outbox (admin action)."""
    from im import tasks

    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.QUEUED, attempts=0, next_attempt_at=None
    )
    queue_after_commit(tasks.send_delivery, delivery.pk)


def refresh_cards(topic: str) -> None:
    """Every sent card of ``topic``, on every platform, is edited to show the current state."""
    from im import tasks

    MessageRef.objects.filter(topic=topic).update(needs_update=True)
    for ref_id in MessageRef.objects.filter(topic=topic).values_list("pk", flat=True):
        queue_after_commit(tasks.update_message, ref_id)


def update_message(ref_id: int) -> float | None:
    """Edit one sent card. Returns seconds until a retry, or None when done."""
    claimed = MessageRef.objects.filter(pk=ref_id, needs_update=True).update(needs_update=False)
    if not claimed:
        return None  # nothing changed since the last edit, or another worker has it
    ref = MessageRef.objects.select_related("delivery__recipient").get(pk=ref_id)
    card = build_card(ref.topic, ref.delivery.recipient, ref.platform)
    if card is None:
        return None
    wait = ratelimit.acquire(ref.platform, ref.address)
    if wait > 0:  # edits count against the platform's limits too: wait, do not fail
        MessageRef.objects.filter(pk=ref_id).update(needs_update=True)
        return wait
    try:
        get_adapter(ref.platform).update_card(ref.address, ref.message_id, card)
    except TransportError as exc:
        ref.update_attempts += 1
        ref.update_error = str(exc)
        retry = not exc.permanent and ref.update_attempts < settings.DELIVERY_MAX_ATTEMPTS
        ref.needs_update = retry
        ref.save(update_fields=["update_attempts", "update_error", "needs_update", "updated_at"])
        return backoff_seconds(ref.update_attempts, exc.retry_after) if retry else None
    MessageRef.objects.filter(pk=ref_id).update(update_attempts=0, update_error="")
    Delivery.objects.filter(pk=ref.delivery_id).update(card=card.to_dict())
    return None


def handle_card_action(platform: str, message_id: str, actor: Any, action_id: str) -> str:
    """A button pressed on a sent card. Returns the text the platform shows the presser.

    ``actor`` is the portal user the platform says pressed it (verified by the adapter). The
    action goes through the topic's own handler, which decides with ``authorize()``.
    """
    ref = MessageRef.objects.filter(platform=platform, message_id=message_id).first()
    if ref is None:
        raise LookupError("unknown message")
    handler = action_handler_for(ref.topic)
    if handler is None:
        raise LookupError("this card has no actions")
    key = f"card:{platform}:{message_id}:{action_id}"
    if len(key) > 100:  # decide() takes keys of up to 100 characters; Matrix message ids are ~90 alone
        key = f"card:{platform}:{hashlib.sha256(key.encode()).hexdigest()}"
    return handler(ref.topic, actor, action_id, key)
