"""The intake's lean route under Daphne (issue #19): ``POST /api/erp/<slug>/events`` with a broker.

Through Django's stack an event cost about 6 ms of Daphne's CPU, most of it the middleware chain (sessions,
auth, locale, CSP, axes, allauth: none of which an ERP's signed POST uses), a query for the connector,
an insert, and a Celery publish per event. Here, ahead of Django:

- the connector is read once per process (``erp.selectors.intake_connector``, kept a few seconds and
  cleared when one is saved);
- the checks are ``erp.intake.check()``, the same as the Django view's: signature, CloudEvent shape,
  the type's JSON Schema (compiled once); a refusal is the same problem+json;
- group commit: the events of the requests that arrive while a store is running are stored together
  by the next one, with one multi-row insert (``erp.intake.store_many``) on one thread that keeps its
  database connection, and answered 202 as soon as it has committed;
- then the workers are told once per group (``erp.intake.tell_workers``), and one log line names the
  group's events, on a thread of its own so a slow or absent broker never delays an answer (the
  safety net queues what could not be told).

Whatever is not clean-cut goes to Django unchanged: other paths and methods, the in-process default
(no broker: events are handled inside their request), a host not in ``ALLOWED_HOSTS``, an unknown or
disabled connector, a missing or bad ``Content-Length`` header or one over the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http.request import split_domain_port, validate_host

from erp.intake import IntakeError, check, store_many, tell_workers
from erp.models import Connector, InboundEvent
from erp.selectors import cached_intake_connector, intake_connector
from portal.api import problem_body
from portal.observability import context
from portal.observability import hooks as observe

logger = logging.getLogger("erp.intake")

INTAKE_PATH = re.compile(r"/api/erp/([-a-zA-Z0-9_]+)/events")
# Events stored by one statement at most; more waiting are stored by the next one.
GROUP_MAX = 100
# What Django's middleware puts on an API answer that still means something for a machine's POST.
STATIC_HEADERS = [
    (b"cache-control", b"private, no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]


class IntakeRoute:
    """ASGI app: the lean intake for its path, ``fallback`` (Django) for everything else."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        # One thread stores (and reads connectors): group commit needs no more, and it keeps one connection.
        self.store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-store")
        self.notify_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-notify")
        self.waiting: list[tuple[InboundEvent, asyncio.Future]] = []
        self.storing: asyncio.Task | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        match = INTAKE_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST" or settings.CELERY_TASK_ALWAYS_EAGER:
            return await self.fallback(scope, receive, send)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length", "")
        if not (_host_allowed(headers.get("host", "")) and length.isdigit()
                and int(length) <= settings.INTAKE_MAX_BODY_BYTES):
            return await self.fallback(scope, receive, send)
        connector = cached_intake_connector(match[1])
        if connector is None:
            loop = asyncio.get_running_loop()
            connector = await loop.run_in_executor(self.store_thread, _read_connector, match[1])
            if connector is None:  # unknown or disabled: Django answers as it always has
                return await self.fallback(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        request_id = context.sane_request_id(headers.get("x-request-id"))
        with context.scope(request_id=request_id, event_id=""):
            await self._intake(connector, headers, body, request_id, send)

    async def _intake(self, connector: Connector, headers: dict[str, str], body: bytes, request_id: str,
                      send: Any) -> None:
        try:
            with observe.intake_observed(connector.slug, connector_known=True) as answered:
                row = check(connector, headers, body)
                duplicate = await self._store(row)
                answered(duplicate)
        except IntakeError as exc:
            return await _answer(send, exc.status, _problem(exc.status, exc.title, exc.detail), request_id,
                                 problem=True)
        except (OperationalError, InterfaceError):  # as DatabaseUnavailableMiddleware answers
            logger.warning("intake: the database cannot be reached", exc_info=True)
            body = _problem(503, "Service unavailable", "the database cannot be reached right now; retry later")
            return await _answer(send, 503, body, request_id, problem=True,
                                 extra=[(b"retry-after", str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS).encode())])
        await _answer(send, 202, _json({"id": row.event_id, "duplicate": duplicate}), request_id)

    async def _store(self, row: InboundEvent) -> bool:
        """Wait for the group this row is stored with; whether it was a duplicate."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append((row, future))
        if self.storing is None:
            self.storing = asyncio.create_task(self._store_groups())
        return await future

    async def _store_groups(self) -> None:
        """Store what waits, a group at a time, until nothing waits (group commit)."""
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                group, self.waiting = self.waiting[:GROUP_MAX], self.waiting[GROUP_MAX:]
                rows = [row for row, _ in group]
                try:
                    outcomes = await loop.run_in_executor(self.store_thread, _store_group, rows)
                except Exception as exc:  # the database: every request of the group gets its answer
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():  # its client went away
                        continue
                    if isinstance(outcome, IntakeError):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                stored = [row for row, outcome in zip(rows, outcomes, strict=True) if outcome is False]
                if stored:
                    self.notify_thread.submit(_tell_workers, stored)
        finally:
            self.storing = None


def _host_allowed(host: str) -> bool:
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


def _tell_workers(rows: list[InboundEvent]) -> None:
    """On the notifier thread: one notice per stored group (a Celery publish is about 1 ms of CPU)."""
    # One log line per group, not per event (a JSON line costs about 90 µs): the ids are all in it.
    logger.info("erp events accepted", extra={
        "count": len(rows), "event_ids": [context.event_key(row.connector.slug, row.event_id) for row in rows]})
    try:
        tell_workers([row.pk for row in rows])
    except Exception:  # never lose the notifier thread; the safety net queues what was not told
        logger.exception("intake: telling the workers failed")


def _read_connector(slug: str) -> Connector | None:
    with _connection_kept():
        return intake_connector(slug)


def _store_group(rows: list[InboundEvent]) -> list[bool | IntakeError]:
    with _connection_kept():
        return store_many(rows)


@contextlib.contextmanager
def _connection_kept() -> Iterator[None]:
    """The store thread keeps its one connection from group to group (a connection per group cost a
    pool checkout and return, or a connect without a pool); one that failed is dropped, and the next
    group connects again."""
    try:
        yield
    except DatabaseError:
        connection.close()
        raise


async def _read_body(receive: Any) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json(body: dict) -> bytes:
    # What JsonResponse writes: json.dumps' default separators.
    return json.dumps(body, ensure_ascii=False).encode()


def _problem(status: int, title: str, detail: str) -> bytes:
    return _json(problem_body(status, title, detail))


async def _answer(send: Any, status: int, body: bytes, request_id: str, *, problem: bool = False,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"content-type", b"application/problem+json" if problem else b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *STATIC_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
