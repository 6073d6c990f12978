"""Handling stored ERP events in batches, in workers (with a broker; the in-process default handles
each event inside its intake request instead, see ``erp.intake.receive``).

``handle_received(ids)`` claims events still ``received`` with ``SELECT … FOR UPDATE SKIP LOCKED`` (a
plain claim on SQLite, whose writers are serialised anyway) and handles them inside one transaction:
consecutive events of a type with a set-based handler (``erp.events.register_many``) are written
together in one savepoint (one insert per table for all of them); if that fails in any way it is rolled
back and those events are handled one by one. One by one, each event's handler runs in its own
savepoint. Every outcome is recorded in one multi-row update:
``processed``, or ``failed`` with the error (bad data, a handler's bug), visible in admin and
metrics and retried from admin. A database error rolls the whole batch back: its events stay
``received`` and the safety net (``portal.tasks.requeue_stale_work``) queues them again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from erp.events import ErpEvent, EventDataError, ManyHandler, handler_for, many_handler_for, run_post_hooks
from erp.models import Connector, InboundEvent
from portal.bulk import columns_of, row_reader, update_rows
from portal.observability import context, metrics

logger = logging.getLogger(__name__)

# Events claimed per transaction: one event's cards and pushes then leave together with its batch.
BATCH_SIZE = 50

# Context managers wrapped around each batch, registered by apps in AppConfig.ready() (erp knows none
# of them): im collects the batch's outbox rows and sends them once the batch has committed.
BATCH_CONTEXTS: list[Callable[[], AbstractContextManager]] = []


T = TypeVar("T")

# Reads shared by every event of the batch being handled (configuration no handler writes: notification
# rules), None outside a batch.
_batch_reads: ContextVar[dict[Any, Any] | None] = ContextVar("erp_batch_reads", default=None)


def read_once_per_batch(key: Any, load: Callable[[], T]) -> T:
    """``load()`` once per batch of events for ``key`` (every time outside a batch). Only for what the
    handlers do not write: a value read here survives an event's rolled-back savepoint."""
    reads = _batch_reads.get()
    if reads is None:
        return load()
    if key not in reads:
        reads[key] = load()
    return reads[key]


def read_many_once_per_batch(kind: str, keys: list[Any], load: Callable[[list[Any]], dict[Any, Any]],
                             ) -> dict[Any, Any]:
    """{key: value} for ``keys``, each read once per batch: ``load(missing keys)`` answers in one query for
    the keys not read yet in this batch (a key it leaves out is None). Outside a batch, ``load(keys)``."""
    reads = _batch_reads.get()
    if reads is None:
        return load(keys)
    known = reads.setdefault(kind, {})
    missing = [key for key in dict.fromkeys(keys) if key not in known]
    if missing:
        found = load(missing)
        known.update({key: found.get(key) for key in missing})
    return {key: known[key] for key in keys}


def _claim(event_ids: list[int] | None, limit: int) -> list[InboundEvent]:
    """Up to ``limit`` received events (of ``event_ids`` when given), oldest first, each with its connector,
    locked for this transaction: ``SELECT … FOR UPDATE OF <events> SKIP LOCKED`` (rows another worker is
    claiming are its). On PostgreSQL a statement built once per process: the ORM building the same query
    was about a tenth of a worker's CPU for a batch of one event (issue #19)."""
    if connection.vendor != "postgresql":
        pending = InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED)
        if event_ids is not None:
            pending = pending.filter(pk__in=event_ids)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True, of=("self",))
        return list(pending.select_related("connector").order_by("pk")[:limit])
    sql, split = _claim_sql(event_ids is not None)
    params = [InboundEvent.Status.RECEIVED, *([list(event_ids)] if event_ids is not None else []), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    read_event, read_connector = row_reader(InboundEvent, connection), row_reader(Connector, connection)
    field = InboundEvent._meta.get_field("connector")
    rows = []
    for values in found:
        event = read_event(values[:split])
        field.set_cached_value(event, read_connector(values[split:]))  # as select_related("connector")
        rows.append(event)
    return rows


@functools.cache
def _claim_sql(by_id: bool) -> tuple[str, int]:
    """The claim's statement and where the connector's columns start in its rows."""
    quote = connection.ops.quote_name
    events, connectors = quote(InboundEvent._meta.db_table), quote(Connector._meta.db_table)
    event_pk, connector_pk = quote(InboundEvent._meta.pk.column), quote(Connector._meta.pk.column)
    connector_col = quote(InboundEvent._meta.get_field("connector").column)
    status_col = quote(InboundEvent._meta.get_field("status").column)
    only = f" AND e.{event_pk} = ANY(%s)" if by_id else ""
    # Only quoted names from the models' metadata are formatted in; every value is a parameter.
    sql = (f"SELECT {columns_of(InboundEvent, connection, 'e')}, {columns_of(Connector, connection, 'c')} "  # noqa: S608
           f"FROM {events} e INNER JOIN {connectors} c ON c.{connector_pk} = e.{connector_col} "
           f"WHERE e.{status_col} = %s{only} ORDER BY e.{event_pk} LIMIT %s FOR UPDATE OF e SKIP LOCKED")
    return sql, len(InboundEvent._meta.concrete_fields)


def register_batch_context(factory: Callable[[], AbstractContextManager], *, outermost: bool = False) -> None:
    """``outermost``: entered before (and left after) the others, e.g. to outlive im's sends."""
    if factory in BATCH_CONTEXTS:
        return
    if outermost:
        BATCH_CONTEXTS.insert(0, factory)
    else:
        BATCH_CONTEXTS.append(factory)


def handle_received(event_ids: list[int] | None = None, limit: int = BATCH_SIZE,
                    when_full: Callable[[list[int]], object] | None = None) -> int:
    """Handle up to ``limit`` received events (of ``event_ids`` when given). Returns how many.
    ``when_full(ids)`` is called right after a claim that took ``limit`` events: more may be waiting."""
    with contextlib.ExitStack() as around, transaction.atomic():
        for batch_context in BATCH_CONTEXTS:  # e.g. im: the batch's cards sent after its commit
            around.enter_context(batch_context())
        rows = _claim(event_ids, limit)
        if when_full is not None and len(rows) >= limit and connection.features.has_select_for_update_skip_locked:
            when_full([row.pk for row in rows])  # another claim skips the rows this one holds
        token = _batch_reads.set({})
        try:
            start = 0
            while start < len(rows):
                start += _handle_from(rows, start)
        finally:
            _batch_reads.reset(token)
        update_rows(InboundEvent, rows, ["status", "handled_at", "attempts", "error"])
    for row in rows:
        metrics.ERP_EVENTS_HANDLED.labels(row.connector.slug, row.type, row.status).inc()
    return len(rows)


def _handle_from(rows: list[InboundEvent], start: int) -> int:
    """Handle ``rows[start]`` and, when its type has a set-based handler, the run of same-type events
    after it together. Returns how many rows were handled."""
    handle_many = many_handler_for(rows[start].type)
    end = start + 1
    while handle_many is not None and end < len(rows) and rows[end].type == rows[start].type:
        end += 1
    if handle_many is None:
        _handle_one(rows[start])
        return 1
    handled = _handle_together(rows[start:end], handle_many)
    if handled > 0:
        return handled
    for row in rows[start:start + max(-handled, 1)]:  # the ones the set-based handler leaves to this path
        _handle_one(row)
    return max(-handled, 1)


def _handle_together(rows: list[InboundEvent], handle_many: ManyHandler) -> int:
    """The set-based path: a leading part of ``rows`` written together, then each one's post-hooks, all
    in one savepoint. Returns how many rows it handled, or minus how many leading rows the handler
    leaves to the one-by-one path (``erp.events.register_many``). Any exception
    (a bad event, a unique violation from a concurrent writer, a hook's bug) rolls the savepoint back
    and every row of the run is handled one by one instead, so a bad event is ``failed`` alone."""
    events = [_event_of(row) for row in rows]
    try:
        with transaction.atomic():
            count = handle_many(events)
            for event in events[:max(count, 0)]:
                with context.scope(event_id=context.event_key(event.connector.slug, event.id)):
                    run_post_hooks(event)
    except Exception:
        logger.warning("%d %s events: handling them together failed; one by one instead", len(rows),
                       rows[0].type, exc_info=True)
        metrics.ERP_BATCH_FALLBACKS.labels(rows[0].type).inc()
        for row in rows:
            _handle_one(row)
        return len(rows)
    now = timezone.now()
    for row in rows[:max(count, 0)]:
        row.attempts += 1
        row.handled_at = now
        row.status, row.error = InboundEvent.Status.PROCESSED, ""
    return count


def _event_of(row: InboundEvent) -> ErpEvent:
    return ErpEvent(connector=row.connector, id=row.event_id, type=row.type, source=row.source,
                    subject=row.subject, data=row.data)


def _handle_one(row: InboundEvent) -> None:
    event = _event_of(row)
    row.attempts += 1
    row.handled_at = timezone.now()
    handler = handler_for(row.type)
    with context.scope(event_id=context.event_key(row.connector.slug, row.event_id)):
        try:
            with transaction.atomic():  # a savepoint: a failed event leaves no half of itself behind
                if handler is None:
                    raise EventDataError(f"type {row.type!r} is not handled")
                handler(event)
        except DatabaseError:
            raise  # the database, not the event: the batch rolls back and is tried again
        except EventDataError as exc:
            row.status, row.error = InboundEvent.Status.FAILED, str(exc)[:2000]
            logger.warning("erp event %s failed: %s", row.event_id, exc)
            return
        except Exception as exc:  # a handler's bug must not block the rest of the batch
            row.status, row.error = InboundEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
            logger.exception("erp event %s failed", row.event_id)
            return
    row.status, row.error = InboundEvent.Status.PROCESSED, ""


def retry(event_ids: list[int]) -> int:
    """Failed events back to ``received`` and queued again (admin action). Returns how many."""
    from erp import tasks
    from portal.tasks import queue_after_commit

    ids = list(InboundEvent.objects.filter(pk__in=event_ids, status=InboundEvent.Status.FAILED)
               .values_list("pk", flat=True))
    InboundEvent.objects.filter(pk__in=ids).update(status=InboundEvent.Status.RECEIVED, error="")
    if ids:
        queue_after_commit(tasks.handle_events, ids)
    return len(ids)
