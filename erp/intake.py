"""Event intake: verify, de-duplicate, normalise, hand to the registered handler.

The integrator's contract (docs/integration.md, /api/events/): CloudEvents 1.0 structured JSON,
signed per Standard Webhooks. Both the HTTP view and the built-in demo ERP come through
``receive()``: there is no side door.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from erp.events import ErpEvent, EventDataError, handler_for, validate
from erp.models import Connector, InboundEvent
from portal.observability import hooks as observe

logger = logging.getLogger(__name__)

REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


class IntakeError(Exception):
    """A refused event. Rendered as application/problem+json with ``status``."""

    def __init__(self, status: int, title: str, detail: str = "") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class IntakeResult:
    event_id: str
    duplicate: bool


@observe.observe_intake  # counts accepted/duplicate/rejected; the event id stays with this event
def receive(connector_slug: str, headers: Mapping[str, str], body: bytes) -> IntakeResult:
    """Accept one signed CloudEvent for ``connector_slug`` or raise IntakeError.

    Signature, size and CloudEvent shape are checked here, always. With a broker the event is then
    only stored (``received``) and answered; workers handle it in batches (``_store``). In-process
    it is handled here, in the same transaction as its row (``_store_and_handle``). Under Daphne,
    with a broker, the intake's requests take the lean route instead (``erp/asgi.py``): the same
    ``check()``, and ``store_many()`` for every request that arrived together.
    """
    if len(body) > settings.INTAKE_MAX_BODY_BYTES:
        raise IntakeError(413, "Payload too large", f"at most {settings.INTAKE_MAX_BODY_BYTES} bytes")
    connector = Connector.objects.filter(slug=connector_slug, enabled=True).first()
    if connector is None:
        raise IntakeError(404, "Unknown connector", f"no enabled ERP connector {connector_slug!r}")
    row = check(connector, headers, body)
    # No broker (the embedded default): nothing would hand the event to a worker, so handle it now.
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    duplicate = _store_and_handle(row, handler_for(row.type)) if eager else _store(row)
    if not duplicate:
        logger.info("erp event accepted", extra={"event_id": row.event_id, "event_type": row.type})
    return IntakeResult(event_id=row.event_id, duplicate=duplicate)


def check(connector: Connector, headers: Mapping[str, str], body: bytes) -> InboundEvent:
    """Everything about one event that needs no database: its size, signature, CloudEvent shape, a
    handler for its type and its data against the type's JSON Schema. Returns the row to store
    (unsaved) or raises IntakeError."""
    if len(body) > settings.INTAKE_MAX_BODY_BYTES:
        raise IntakeError(413, "Payload too large", f"at most {settings.INTAKE_MAX_BODY_BYTES} bytes")
    _verify_signature(connector, headers, body)
    webhook_id = next(v for k, v in headers.items() if k.lower() == "webhook-id")  # verify() required it
    envelope = _parse_cloudevent(body)
    observe.intake_parsed(connector.slug, envelope)  # from here on, log lines carry its event id

    if handler_for(envelope["type"]) is None:
        raise IntakeError(400, "Unsupported event type", f"type {envelope['type']!r} is not handled")
    try:
        validate(envelope["type"], envelope["data"])  # the published schema, before anything is written
    except EventDataError as exc:
        raise IntakeError(400, "Invalid event data", str(exc)) from exc
    return InboundEvent(
        connector=connector,
        webhook_id=webhook_id,
        event_id=envelope["id"],
        type=envelope["type"],
        source=envelope["source"],
        subject=str(envelope.get("subject") or ""),
        occurred_at=_parse_time(envelope.get("time")),
        data=envelope["data"],
    )


def _store(row: InboundEvent) -> bool:
    """With a broker: verify, validate, store, answer. One insert (its savepoint is the de-duplication
    on (connector, webhook-id)); the handling is queued after commit for the workers, in batches
    (erp/handling.py). Returns whether the event was a duplicate."""
    row.status = InboundEvent.Status.RECEIVED
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except (IntegrityError, DataError) as exc:
        # This webhook-id was stored before (a redelivery) or a concurrent delivery won the race.
        if InboundEvent.objects.filter(connector=row.connector, webhook_id=row.webhook_id).exists():
            return True
        raise _unstorable(exc) from exc
    transaction.on_commit(lambda: tell_workers([row.pk]))
    return False


# The columns the group insert writes (every column but the id; handled_at stays NULL).
_GROUP_COLUMNS = ("connector", "webhook_id", "event_id", "type", "source", "subject", "occurred_at", "data",
                  "status", "received_at", "attempts", "error")


def store_many(rows: list[InboundEvent]) -> list[bool | IntakeError]:
    """Group commit (the lean route, erp/asgi.py): the events of every request that arrived together,
    stored ``received`` with one multi-row ``INSERT … ON CONFLICT (connector, webhook-id) DO NOTHING
    RETURNING``. Per row: whether it was a duplicate (of a stored event, or of an earlier row of the
    group), or the IntakeError to answer. One row the database refuses (a NUL in a string, a value
    too long) would fail its group, so the group is then stored row by row and only that one is refused.
    A database that cannot be reached raises (the route answers 503)."""
    now = timezone.now()
    for row in rows:
        row.status, row.received_at = InboundEvent.Status.RECEIVED, now
    # One statement is atomic by itself; inside a caller's transaction a savepoint keeps that usable.
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            stored = _insert_ignoring_duplicates(rows)
    except (IntegrityError, DataError) as exc:
        if len(rows) == 1:
            return [_unstorable(exc)]
        return [outcome for row in rows for outcome in store_many([row])]
    outcomes: list[bool | IntakeError] = []
    for row in rows:
        row.pk = stored.pop((row.connector_id, row.webhook_id), None)
        outcomes.append(row.pk is None)
    return outcomes


def _insert_ignoring_duplicates(rows: list[InboundEvent]) -> dict[tuple[int, str], int]:
    """One statement; returns the id of each row it stored by (connector id, webhook-id). Django's
    ``bulk_create(ignore_conflicts=True)`` cannot say which rows were stored, so this is SQL, with each
    value prepared by its model field (JSON, times) as ``save()`` would."""
    meta = InboundEvent._meta
    fields = [meta.get_field(name) for name in _GROUP_COLUMNS]
    quote = connection.ops.quote_name
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (  # names from the model, values as parameters
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([one_row] * len(rows))} "  # noqa: S608
        f"ON CONFLICT ({quote('connector_id')}, {quote('webhook_id')}) DO NOTHING "
        f"RETURNING {quote('id')}, {quote('connector_id')}, {quote('webhook_id')}"
    )
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for row in rows for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(connector_id, webhook_id): pk for pk, connector_id, webhook_id in cursor.fetchall()}


def tell_workers(event_ids: list[int]) -> bool:
    """Wake the workers for events just committed, at once (not on a beat tick): one task per batch of
    ``erp.handling.BATCH_SIZE``, unless a handling task is already waiting to start, which will claim
    these too (erp/doorbell.py). With the broker down nothing is lost: the failure is logged, the events
    stay ``received`` and the safety net queues them (erp/requeue.py). Returns whether a task was queued."""
    from erp import doorbell, tasks
    from erp.handling import BATCH_SIZE
    from portal.tasks import queue_now

    if not doorbell.ring():
        return False
    queued = False
    for start in range(0, len(event_ids), BATCH_SIZE):
        queued = queue_now(tasks.handle_events, event_ids[start:start + BATCH_SIZE]) or queued
    if not queued:
        doorbell.answer()  # nothing is waiting after all: the next events try the broker again
    return queued


def _store_and_handle(row: InboundEvent, handler: Callable[[ErpEvent], None]) -> bool:
    """In-process (the embedded default, no broker): the event is handled inside its request, so it is
    handled at once and its data errors are answered 400 here. Nothing is written unless the handler
    succeeds: the event row and every change it causes commit together."""
    if InboundEvent.objects.filter(connector=row.connector, webhook_id=row.webhook_id).exists():
        return True
    event = ErpEvent(connector=row.connector, id=row.event_id, type=row.type, source=row.source,
                     subject=row.subject, data=row.data)
    row.status = InboundEvent.Status.PROCESSED
    try:
        with transaction.atomic():
            row.save(force_insert=True)
            handler(event)
    except (IntegrityError, DataError) as exc:
        # A concurrent delivery of the same webhook-id won the race; this one changes nothing.
        if InboundEvent.objects.filter(connector=row.connector, webhook_id=row.webhook_id).exists():
            return True
        raise _unstorable(exc) from exc
    except EventDataError as exc:
        raise IntakeError(400, "Invalid event data", str(exc)) from exc
    return False


def _unstorable(exc: Exception) -> IntakeError:
    """Signed, well-formed JSON the database still refuses (a lone UTF-16 surrogate or a NUL in a
    string, a value too long for its column): bad data, so a 400, never a 500 (Hypothesis found it)."""
    logger.info("erp event refused by the database: %s", exc)
    return IntakeError(400, "Invalid event data", "the event's data cannot be stored as sent")


def _verify_signature(connector: Connector, headers: Mapping[str, str], body: bytes) -> None:
    try:
        Webhook(connector.webhook_secret).verify(body, dict(headers), json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:
        # ValueError covers a body that is not UTF-8 and a malformed signature header.
        raise IntakeError(401, "Invalid signature", str(exc) or "signature check failed") from exc


def _parse_cloudevent(body: bytes) -> dict:
    try:
        # JSON on the wire is UTF-8 (RFC 8259 §8.1). json.loads(bytes) would guess UTF-16/32 from
        # the first bytes, so decode strictly here: the answer must not depend on a library's guess.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeError(400, "Body is not UTF-8", "a CloudEvent must be sent as UTF-8 JSON (RFC 8259)") from exc
    try:
        envelope = json.loads(text)
    # RecursionError: a signed body of deeply nested arrays still fits in 256 KB.
    except (ValueError, RecursionError) as exc:
        raise IntakeError(400, "Malformed JSON", str(exc)) from exc
    if not isinstance(envelope, dict):
        raise IntakeError(400, "Not a CloudEvent", "the body must be a JSON object")
    missing = [a for a in REQUIRED_ATTRIBUTES if not isinstance(envelope.get(a), str) or not envelope[a]]
    if missing:
        raise IntakeError(400, "Not a CloudEvent", "missing or empty attributes: " + ", ".join(missing))
    if envelope["specversion"] != "1.0":
        raise IntakeError(400, "Unsupported specversion", "only CloudEvents 1.0 is accepted")
    content_type = envelope.get("datacontenttype", "application/json")
    if content_type != "application/json" or not isinstance(envelope.get("data"), dict):
        raise IntakeError(400, "Invalid event data", "data must be a JSON object (application/json)")
    if "time" in envelope and _parse_time(envelope["time"]) is None:
        raise IntakeError(400, "Not a CloudEvent", "time must be an RFC 3339 timestamp")
    return envelope


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None
