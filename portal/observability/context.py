"""The ids every log line inside a scope carries.

``request_id``: one HTTP request or websocket connection (incoming ``X-Request-ID`` when sane),
and every Celery task it queued. ``event_id``: one ERP event, ``<connector slug>:<CloudEvent id>``,
from the intake through its cards, the decision on its document and the ERP writeback. That is
also the prefix of the ``Delivery.dedupe_key`` of the cards the event caused (``enqueue_cards``),
which is how a task or a later request finds it again from the rows.

contextvars, not thread locals: they follow asyncio tasks (one per websocket), asgiref's
sync/async hops and Celery's eager tasks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
event_id: ContextVar[str] = ContextVar("event_id", default="")
_VARS = {"request_id": request_id, "event_id": event_id}

# What a proxy or client may hand us as X-Request-ID: short, no spaces or control characters, so it
# cannot forge log lines or blow up a log index. Anything else is replaced by our own.
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | bytes | None) -> str:
    """``value`` if it is an acceptable request id, else a new one."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and _SANE_ID.match(value):
        return value
    return new_request_id()


def current() -> dict[str, str]:
    return {name: var.get() for name, var in _VARS.items()}


def bind(**ids: str | None) -> None:
    """Set ids for the rest of the current scope (``None`` leaves one unchanged)."""
    for name, value in ids.items():
        if value is not None:
            _VARS[name].set(value)


def bind_missing(**ids: str | None) -> None:
    """Set ids that are not set yet: a value carried in (task headers) wins over one derived."""
    bind(**{name: value for name, value in ids.items() if value and not _VARS[name].get()})


@contextmanager
def scope(**ids: str | None) -> Iterator[None]:
    """Bind ``ids`` inside the block; on exit the ids are what they were before it."""
    saved = current()
    bind(**ids)
    try:
        yield
    finally:
        bind(**saved)


def event_key(connector_slug: str, cloudevent_id: str) -> str:
    """The event id of one ERP event (also the dedupe prefix of its cards)."""
    return f"{connector_slug}:{cloudevent_id}"


def event_id_from_dedupe_key(key: str) -> str:
    """The event id behind a delivery: ``<slug>:<event>[:delegate]:<user>:<platform>`` → ``<slug>:<event>``.

    Deliveries of other origins (bot answers ``bot:…``, notification rules ``notice.…``) have none.
    """
    if key.startswith(("bot:", "notice.")) or key.count(":") < 3:
        return ""
    prefix = key.rsplit(":", 2)[0]
    return prefix.removesuffix(":delegate")
