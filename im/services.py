"""Delivery: put cards in the outbox, send them, keep their references, edit them when things change.

Permissions are not decided here: card builders (registered per topic kind) call ``authorize()``
and return None for a recipient who may see nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from im import accepted as accepted_sends
from im import ratelimit
from im.cards import Card, action_handler_for, build_card, build_cards
from im.models import Delivery, MessageRef
from im.platforms import enabled_platforms, get_adapter
from im.platforms.base import SentMessage, TransportError, Unsupported, identities_read_once
from im.signals import deliveries_finished
from portal.bulk import columns_of, row_reader, update_rows, update_sql, values_sql
from portal.observability import hooks as observe
from portal.retry import backoff_seconds, next_attempt_at
from portal.tasks import queue_after_commit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    user: Any
    reason: str


@dataclass(frozen=True)
class OutboxItem:
    """One row for ``write_outbox``: a card to ``recipient``, or an operation (``kind``) on ``ref``."""

    dedupe_key: str
    topic: str
    platform: str
    recipient: Any = None
    reason: str = ""
    kind: str = Delivery.Kind.CARD
    ref: str = ""


# Rows claimed and sent per task: the sends of one event travel together, and a batch stays well
# inside its lease (DELIVERY_LEASE_SECONDS).
BATCH_SIZE = 50


def write_outbox(items: list[OutboxItem]) -> list[int]:
    """THE writer of the outbox: every card (approvals, notification rules, the bot, foresight) and
    every group-chat operation becomes a ``Delivery`` row here, in the caller's transaction, and is
    queued for sending after commit. A ``dedupe_key`` already present adds nothing (a redelivered
    event), so a repeat is a no-op. A constant number of queries whatever the number of rows:
    one read of the keys present, one multi-row insert, one read of the new ids.
    Returns the ids of the rows added."""
    wanted = {item.dedupe_key: item for item in items}  # the first of a repeated key wins
    if not wanted:
        return []
    rows = [
        Delivery(dedupe_key=key, kind=item.kind, topic=item.topic, recipient=item.recipient,
                 platform=item.platform, reason=item.reason[:200], ref=item.ref)
        for key, item in wanted.items()
    ]
    ids = _insert_new(rows)
    if not ids:
        return []
    collected = _collector.get()
    if collected is not None:
        collected.extend(ids)  # queued together with the rest of the batch (collect_outbox)
    else:
        _queue_sends(ids)
    return ids


def _insert_new(rows: list[Delivery]) -> list[int]:
    """Insert the rows whose ``dedupe_key`` is not present; the ids of those inserted. One statement per
    batch (``INSERT … ON CONFLICT DO NOTHING RETURNING id``, PostgreSQL and SQLite 3.35+) where reading the
    keys present, inserting and reading the new ids back took three. A concurrent writer of the same key
    keeps its row and this one returns nothing for it."""
    if not connection.features.can_return_rows_from_bulk_insert:
        present = set(Delivery.objects.filter(dedupe_key__in=[r.dedupe_key for r in rows])
                      .values_list("dedupe_key", flat=True))
        rows = [row for row in rows if row.dedupe_key not in present]
        Delivery.objects.bulk_create(rows, ignore_conflicts=True)
        return list(Delivery.objects.filter(dedupe_key__in=[r.dedupe_key for r in rows]).values_list("pk", flat=True))
    opts = Delivery._meta
    fields = [f for f in opts.concrete_fields if not f.generated and f is not opts.pk]
    size = connection.ops.bulk_batch_size(fields, rows) or len(rows)
    ids: list[int] = []
    for start in range(0, len(rows), size):
        returned = Delivery.objects._insert(rows[start:start + size], fields=fields, returning_fields=[opts.pk],
                                            on_conflict=OnConflict.IGNORE)
        ids += [row[0] for row in returned if row is not None]  # one row with a conflict comes back as None
    return ids


def _queue_sends(ids: list[int]) -> None:
    from im import tasks

    for start in range(0, len(ids), BATCH_SIZE):
        queue_after_commit(tasks.send_delivery, ids[start:start + BATCH_SIZE])


_collector: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("outbox_collector", default=None)


@contextlib.contextmanager
def collect_outbox() -> Iterator[None]:
    """Rows written inside this block are sent together at its end, after its commit. In a worker the
    same worker sends them (``send_now``) instead of queueing them behind the rest of the queue: a
    worker that handled 50 events sends their cards right away. A send that fails to start leaves the
    rows to the safety net, as a lost task would."""
    ids: list[int] = []
    token = _collector.set(ids)
    try:
        yield
    finally:
        _collector.reset(token)
    if _in_worker():
        send_now(ids)
    else:
        _queue_sends(ids)  # in-process: the tasks run right here anyway


def _in_worker() -> bool:
    """True inside a task a Celery worker took from the broker (not one run in-process, eagerly)."""
    from celery import current_task

    return bool(current_task) and not current_task.request.is_eager


def send_now(ids: list[int]) -> None:
    """Send these outbox rows here, in batches, outside any transaction (the caller's has committed)."""
    from im import tasks

    for start in range(0, len(ids), BATCH_SIZE):
        try:
            tasks.send_delivery(ids[start:start + BATCH_SIZE])  # the task's body, run here
        except Exception:
            logger.warning("sending %d outbox rows failed; the safety net will", len(ids), exc_info=True)
            return


def enqueue_cards(topic: str, recipients: list[Recipient], dedupe_prefix: str) -> list[int]:
    """One card per (recipient, platform) through ``write_outbox``; sent after commit.

    The same ``dedupe_prefix`` twice (a redelivered event) adds nothing.
    """
    return write_outbox(card_items(topic, recipients, dedupe_prefix))


def card_items(topic: str, recipients: list[Recipient], dedupe_prefix: str) -> list[OutboxItem]:
    """``enqueue_cards``' rows, for a caller that writes the cards of many topics in one ``write_outbox``
    (a worker's batch of events: the same keys, so the same exactly-once)."""
    platforms = enabled_platforms()
    return [
        OutboxItem(dedupe_key=f"{dedupe_prefix}:{r.user.pk}:{platform}", topic=topic, platform=platform,
                   recipient=r.user, reason=r.reason)
        for r in recipients for platform in platforms
    ]


# --- operations other than cards (group chats): the app that owns them registers how to perform them


class Deferred(Exception):
    """Not now, and not a failure: the operation waits ``seconds`` without using up an attempt
    (a post whose group is not open on the platform yet)."""

    def __init__(self, seconds: float, why: str = "") -> None:
        super().__init__(why)
        self.seconds = seconds


class Skip(Exception):
    """Nothing to do any more (the group was never opened): the row ends as skipped, with why."""


Operation = Callable[[Delivery], None]
_operations: dict[str, Operation] = {}


def register_operation(kind: str, perform: Operation) -> None:
    """``perform(delivery)`` calls the platform for a row of ``kind``. It raises ``TransportError``
    (retried with backoff, or dead when ``permanent``), ``Unsupported`` (dead), ``Deferred`` or
    ``Skip``; the outbox alone decides what a failure means, as for cards."""
    _operations[kind] = perform


# --- sending ----------------------------------------------------------------------------------------

# How long a worker keeps trying to record a card the platform has accepted when the database went away
# in between (see send_batch); past that the row is sent again later and the idempotency key is all
# that stops a second card.
RECORD_SENT_SECONDS = 60.0


def send_delivery(delivery_id: int) -> float | None:
    """Send one outbox row. Returns seconds to wait before trying again, or None when finished."""
    return send_batch([delivery_id]).get(delivery_id)


def send_batch(delivery_ids: list[int]) -> dict[int, float]:
    """Send a batch of outbox rows; returns {row id: seconds to wait} for those to try again later.

    1. Claim: one short transaction stamps ``lease_until`` on the rows still queued and not claimed
       (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the conditional UPDATE is the claim).
    2. Send each row with no transaction open and no row lock held; a send starts only in the first
       half of the lease, so a row is never sent by two workers (the rest are released and queued again).
    3. Record every outcome in one transaction (one multi-row update, the message references, one audit
       append for the batch); if the database is gone at that moment, keep trying to record for
       ``RECORD_SENT_SECONDS`` rather than leave an accepted card queued to be sent again.
    """
    from sso import snapshot

    with snapshot.pinned():  # one read of the permission stamp for the batch's cards
        return _send_batch(delivery_ids)


def _send_batch(delivery_ids: list[int]) -> dict[int, float]:
    """``send_batch``'s body, on one permission stamp."""
    claimed = _claim(delivery_ids)
    if not claimed:
        return {}
    send_until = time.monotonic() + settings.DELIVERY_LEASE_SECONDS / 2
    delays: dict[int, float] = {}
    done: list[Delivery] = []
    rest: list[Delivery] = []
    try:
        cards = build_batch_cards(claimed)
    except DatabaseError:
        logger.warning("%d deliveries: database error building their cards; left to the safety net", len(claimed),
                       exc_info=True)
        _release(claimed)
        return {}
    # Cards a platform accepted under a sender that died before recording them: recorded, not sent again.
    accepted_before = accepted_sends.noted(d.pk for d in claimed if d.kind == Delivery.Kind.CARD)
    with identities_read_once([d.recipient for d in claimed], {d.platform for d in claimed}):
        for delivery in claimed:
            if rest or time.monotonic() > send_until:
                rest.append(delivery)
                continue
            if delivery.pk in accepted_before:
                _accepted_earlier(delivery, cards.get(delivery.pk), *accepted_before[delivery.pk])
                done.append(delivery)
                continue
            observe.delivery_started(delivery)
            try:
                delay = _attempt(delivery, cards.get(delivery.pk))
            except DatabaseError:
                # The database went away before this row reached the platform: record what was sent,
                # leave this row and the rest to their lease (the safety net re-queues them).
                logger.warning("delivery %s: database error before sending; left to the safety net", delivery.pk,
                               exc_info=True)
                rest.append(delivery)
                continue
            done.append(delivery)
            if delay is not None:
                delays[delivery.pk] = delay
    _record(done)
    accepted_sends.forget(d.pk for d in done if getattr(d, "sent_message", None))
    if rest:
        _release(rest)
    return delays


def _accepted_earlier(delivery: Delivery, card: Card | None, address: str, message_id: str, recall_id: str) -> None:
    delivery.attempts += 1
    if card is not None:
        delivery.card = card.to_dict()
    delivery.sent_message = (address, SentMessage(message_id=message_id, recall_id=recall_id))
    _finish(delivery, Delivery.Status.SENT)


def _claim(delivery_ids: list[int]) -> list[Delivery]:
    now = timezone.now()
    # A lease unique to this claim (microseconds of jitter), so the rows recorded later are exactly ours.
    lease = now + dt.timedelta(seconds=settings.DELIVERY_LEASE_SECONDS, microseconds=random.randrange(1, 999_999))
    if connection.vendor == "postgresql":
        return _claim_in_one_statement(delivery_ids, now, lease)
    # Elsewhere (SQLite: writers are serialised) the conditional UPDATE is the claim and the lease finds
    # the rows it took.
    free = Q(lease_until=None) | Q(lease_until__lt=now)
    if not Delivery.objects.filter(free, pk__in=delivery_ids, status=Delivery.Status.QUEUED).update(lease_until=lease):
        return []
    return list(Delivery.objects.filter(pk__in=delivery_ids, lease_until=lease).select_related("recipient__profile")
                .order_by("pk"))


def _claim_in_one_statement(delivery_ids: list[int], now: dt.datetime, lease: dt.datetime) -> list[Delivery]:
    """PostgreSQL: lock (``SKIP LOCKED``: rows another sender is claiming are its), lease and read the rows
    with their recipients and profiles as ONE statement, in autocommit (a statement is its own transaction).
    It was a transaction of three ORM queries; each cost more of Django's CPU than the database's time.
    Only this table's rows are locked, never the recipient's user row (decide() deadlocked on it once)."""
    sql, split, split_user = _claim_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [lease, list(delivery_ids), Delivery.Status.QUEUED, now])
        found = cursor.fetchall()
    user_model, profile_model = _recipient_models()
    read_delivery, read_user, read_profile = (row_reader(model, connection)
                                              for model in (Delivery, user_model, profile_model))
    recipient, profile = Delivery._meta.get_field("recipient"), user_model._meta.get_field("profile")
    owner = profile_model._meta.get_field("user")
    claimed = []
    for values in found:
        delivery, user = read_delivery(values[:split]), read_user(values[split:split_user])
        recipient.set_cached_value(delivery, user)  # as select_related("recipient__profile") leaves them
        if user is not None:
            person = read_profile(values[split_user:])
            profile.set_cached_value(user, person)  # None: reading user.profile raises, as after select_related
            if person is not None:
                owner.set_cached_value(person, user)
        claimed.append(delivery)
    return claimed


def _recipient_models() -> tuple[Any, Any]:
    from sso.models import Profile

    return Delivery._meta.get_field("recipient").related_model, Profile


@functools.cache
def _claim_sql(vendor: str) -> tuple[str, int, int]:
    """The claim's statement (made once per process) and where its user's and profile's columns start."""
    user_model, profile_model = _recipient_models()
    quote = connection.ops.quote_name
    table, pk = quote(Delivery._meta.db_table), quote(Delivery._meta.pk.column)
    lease_col, status_col = quote("lease_until"), quote("status")
    recipient_col = quote(Delivery._meta.get_field("recipient").column)
    users, user_pk = quote(user_model._meta.db_table), quote(user_model._meta.pk.column)
    profiles, profile_user = quote(profile_model._meta.db_table), quote(profile_model._meta.get_field("user").column)
    # Only quoted names from the models' metadata are formatted in; every value is a parameter.
    sql = (
        f"WITH c AS (UPDATE {table} SET {lease_col} = %s WHERE {pk} IN ("  # noqa: S608
        f"SELECT {pk} FROM {table} WHERE {pk} = ANY(%s) AND {status_col} = %s "
        f"AND ({lease_col} IS NULL OR {lease_col} < %s) FOR UPDATE SKIP LOCKED) RETURNING *) "
        f"SELECT {columns_of(Delivery, connection, 'c')}, {columns_of(user_model, connection, 'u')}, "
        f"{columns_of(profile_model, connection, 'p')} FROM c LEFT JOIN {users} u ON u.{user_pk} = c.{recipient_col} "
        f"LEFT JOIN {profiles} p ON p.{profile_user} = u.{user_pk} ORDER BY c.{pk}"
    )
    split = len(Delivery._meta.concrete_fields)
    return sql, split, split + len(user_model._meta.concrete_fields)


def build_batch_cards(deliveries: list[Delivery]) -> dict[int, Card | None]:
    """The card of each card row of a batch, built together (``im.cards.build_cards``: a kind reads its
    documents and decides who may see them once for the batch), by row id."""
    rows = [d for d in deliveries if d.kind == Delivery.Kind.CARD]
    built = build_cards([(d.topic, d.recipient, d.platform) for d in rows])
    return {d.pk: card for d, card in zip(rows, built, strict=True)}


def _release(deliveries: list[Delivery]) -> None:
    """Claimed but not attempted: free them for the next sender now rather than at the lease's end."""
    from im import tasks

    ids = [d.pk for d in deliveries]
    try:
        Delivery.objects.filter(pk__in=ids, lease_until=deliveries[0].lease_until).update(lease_until=None)
    except DatabaseError:
        return  # the lease runs out by itself; the safety net re-queues them then
    queue_after_commit(tasks.send_delivery, ids)


def _attempt(delivery: Delivery, card: Card | None) -> float | None:
    """One attempt at one row (its ``card`` built with its batch), outside any transaction; the row's
    new state is kept in memory for ``_record``. Returns seconds until the next try, or None when the
    row is finished."""
    delivery.attempts += 1
    if delivery.kind != Delivery.Kind.CARD:
        return _attempt_operation(delivery)
    adapter = get_adapter(delivery.platform)
    if card is None:
        delivery.attempts -= 1
        return _finish(delivery, Delivery.Status.SKIPPED, "the recipient may no longer see this")
    delivery.card = card.to_dict()
    address = adapter.address_of(delivery.recipient)
    if address is None:
        return _give_up(delivery, f"{delivery.recipient} has no linked {delivery.platform} account")
    # The platform's rate bucket first: when it is empty the row waits in the outbox (not a failed
    # attempt), so a burst is spread over time instead of meeting the platform's 429.
    wait = ratelimit.acquire(delivery.platform, address)
    if wait > 0:
        return _wait(delivery, wait)
    try:
        # The delivery's key makes the platform call idempotent where the platform allows it,
        # so a retry after a crash does not post the card twice.
        sent = adapter.send_card(address, card, idempotency_key=delivery.dedupe_key)
    except TransportError as exc:
        return _failed(delivery, exc)
    accepted_sends.note(delivery.pk, address, sent.message_id, sent.recall_id)  # before the batch records it
    delivery.sent_message = (address, sent)
    return _finish(delivery, Delivery.Status.SENT)


def _attempt_operation(delivery: Delivery) -> float | None:
    perform = _operations.get(delivery.kind)
    if perform is None:
        return _give_up(delivery, f"no handler for {delivery.kind} rows")
    try:
        perform(delivery)
    except Deferred as wait:
        return _wait(delivery, wait.seconds)
    except Skip as exc:
        delivery.attempts -= 1
        return _finish(delivery, Delivery.Status.SKIPPED, str(exc))
    except Unsupported as exc:
        return _give_up(delivery, str(exc) or f"{delivery.platform} cannot do this")
    except TransportError as exc:
        return _failed(delivery, exc)
    return _finish(delivery, Delivery.Status.SENT)


def _wait(delivery: Delivery, seconds: float) -> float:
    delivery.attempts -= 1
    delivery.next_attempt_at = next_attempt_at(seconds)
    delivery.outcome = None  # waiting for a token (or for its group) is not an attempt
    return seconds


OUTCOMES = {"sent": "sent", "dead": "dead", "skipped": "skipped"}


def _finish(delivery: Delivery, status: str, error: str = "") -> None:
    delivery.outcome = OUTCOMES[status]
    delivery.status = status
    delivery.last_error = error
    delivery.next_attempt_at = None
    if status == Delivery.Status.SENT:
        delivery.sent_at = timezone.now()
    return None


def _failed(delivery: Delivery, exc: TransportError) -> float | None:
    if exc.permanent or delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        return _give_up(delivery, str(exc))
    delay = backoff_seconds(delivery.attempts, exc.retry_after)
    delivery.last_error = str(exc)
    delivery.next_attempt_at = next_attempt_at(delay)
    delivery.outcome = "retry"
    logger.warning("delivery %s failed, retry in %.0fs: %s", delivery.pk, delay, exc)
    return delay


def _give_up(delivery: Delivery, reason: str) -> None:
    logger.error("delivery %s is a dead letter: %s", delivery.pk, reason)
    return _finish(delivery, Delivery.Status.DEAD, reason)


# What an attempt changes on a row (the lease is cleared by the same statement: ``also`` below).
RECORDED_FIELDS = ["status", "attempts", "last_error", "next_attempt_at", "card", "sent_at"]
REF_FIELDS = ["delivery", "topic", "platform", "address", "message_id", "recall_id", "needs_update",
              "update_attempts", "update_error", "updated_at"]


def _record(done: list[Delivery]) -> None:
    """The outcomes of a batch, in one transaction; retried across a database outage when a platform
    has accepted something (see send_batch)."""
    if not done:
        return
    deadline = time.monotonic() + RECORD_SENT_SECONDS
    while True:
        try:
            _record_batch(done)
            break
        except DatabaseError:
            accepted = any(d.status == Delivery.Status.SENT for d in done)
            if not accepted or connection.in_atomic_block or time.monotonic() > deadline:
                raise
            # The platform answered 2xx, then the database failed before the rows said so (a Postgres
            # restart, a dropped connection): record what happened as soon as the database is back.
            connection.close()  # the broken one; the next query opens a new connection
            time.sleep(0.5)
    for delivery in done:
        if getattr(delivery, "outcome", None):
            observe.card_outcome(delivery, delivery.outcome)


def _record_batch(done: list[Delivery]) -> None:
    """Outcomes, lease cleared and message references: one statement on PostgreSQL (two or three
    elsewhere); then the audit entries of the finished rows (``deliveries_finished``: one append).
    Only rows still under this batch's lease are written: another worker's outcome is never overwritten.
    The rows in memory keep their lease until this commits, so a retry after a database error checks
    the same lease."""
    lease = done[0].lease_until
    mine_only = {"lease_until": lease, "status": Delivery.Status.QUEUED}
    sent = [d for d in done if getattr(d, "sent_message", None)]
    refs = [MessageRef(delivery=d, topic=d.topic, platform=d.platform, address=d.sent_message[0],
                       message_id=d.sent_message[1].message_id, recall_id=d.sent_message[1].recall_id)
            for d in sent]
    with transaction.atomic():
        if connection.vendor == "postgresql" and refs:
            mine = set(_update_and_add_refs(done, refs, mine_only))
        else:
            mine = set(update_rows(Delivery, done, RECORDED_FIELDS, where=mine_only, also={"lease_until": None}))
            # A row that already has its reference (an admin re-sent a sent card) keeps it: no conflict.
            MessageRef.objects.bulk_create([ref for ref in refs if ref.delivery_id in mine], ignore_conflicts=True)
        finished = [d for d in done if d.pk in mine and d.status in (Delivery.Status.SENT, Delivery.Status.DEAD)]
        if finished:
            deliveries_finished.send(sender=Delivery, deliveries=finished)
    for delivery in done:
        if delivery.pk in mine:
            delivery.lease_until = None


def _update_and_add_refs(done: list[Delivery], refs: list[MessageRef], where: dict[str, Any]) -> list[int]:
    """PostgreSQL: the batch's outcomes (``portal.bulk.update_rows``: a value every row shares, such as
    the status of a batch that all went out or its cleared lease, is set once; Django's ``bulk_update``
    building a CASE arm per row and field was most of recording a batch's CPU) and the references of the
    rows it wrote, as one statement; a reference already there is kept (``ON CONFLICT DO NOTHING``).
    Returns the ids written."""
    quote = connection.ops.quote_name
    update, params = update_sql(Delivery, done, RECORDED_FIELDS, connection, where=where,
                                also={"lease_until": None})
    values, value_params = values_sql(MessageRef, refs, REF_FIELDS, connection)
    names = ", ".join(quote(MessageRef._meta.get_field(name).column) for name in REF_FIELDS)
    delivery_col, pk = quote(MessageRef._meta.get_field("delivery").column), quote(Delivery._meta.pk.column)
    # Only quoted names from the models' metadata are formatted in; every value is a parameter.
    sql = (f"WITH done AS ({update}), refs AS (INSERT INTO {quote(MessageRef._meta.db_table)} ({names}) "  # noqa: S608
           f"SELECT * FROM ({values}) AS v({names}) WHERE v.{delivery_col} IN (SELECT {pk} FROM done) "
           f"ON CONFLICT DO NOTHING) SELECT {pk} FROM done")
    with connection.cursor() as cursor:
        cursor.execute(sql, params + value_params)
        return [row[0] for row in cursor.fetchall()]


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
