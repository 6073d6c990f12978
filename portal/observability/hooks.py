"""The calls the loop makes at each step (one line at each call site): bind the event id, count,
and log one line saying what happened. Nothing here may fail the caller's work."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from django.utils import timezone

from portal.observability import context, metrics

logger = logging.getLogger("portal.flow")

F = TypeVar("F", bound=Callable[..., Any])
# (connector slug, event type) of the event being received, once its signature and shape are good.
_intake_labels: ContextVar[tuple[str, str] | None] = ContextVar("intake_labels", default=None)

# Lookups the apps that own the data register (erp and im, in ready()): this module imports no app.
_lookups: dict[str, Callable[[str], Any]] = {
    "event_type_known": lambda event_type: False,
    "connector_known": lambda slug: False,
    "dedupe_keys_of_topic": lambda topic: [],
}


def register_lookups(**lookups: Callable[[str], Any]) -> None:
    """``event_type_known(type)`` and ``connector_known(slug)`` (erp): labels stay bounded;
    ``dedupe_keys_of_topic(topic)`` (im): the outbox keys of a topic's newest cards, newest first."""
    unknown = set(lookups) - set(_lookups)
    if unknown:
        raise ValueError(f"unknown observability lookups: {sorted(unknown)}")
    _lookups.update(lookups)


# --- Intake ---------------------------------------------------------------------------------


def observe_intake(receive: F) -> F:
    """Decorates ``erp.intake.receive``: counts each outcome and logs refusals, in a scope so the
    event id stays with this event (and the work its commit queues) only."""

    @functools.wraps(receive)
    def wrapper(connector_slug: str, *args: Any, **kwargs: Any) -> Any:
        with intake_observed(connector_slug) as answered:
            result = receive(connector_slug, *args, **kwargs)
            answered(result.duplicate)
            return result

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def intake_observed(connector_slug: str, connector_known: bool | None = None) -> Iterator[Callable[[bool], None]]:
    """Around one event at the intake (both routes): a refusal (an exception with a ``status``) is
    counted and logged as it leaves; the caller reports an answered event with the function yielded.
    ``connector_known``: whether the slug names a connector, when the caller knows (no query then)."""
    with context.scope():
        token = _intake_labels.set(None)
        try:
            yield _intake_answered
        except Exception as exc:
            status = getattr(exc, "status", None)
            if status is not None:  # IntakeError: a refusal, answered with a 4xx
                connector, event_type = _intake_labels.get() or (
                    _known_connector(connector_slug, connector_known), "unknown")
                metrics.ERP_EVENTS.labels(connector, event_type, "rejected").inc()
                logger.info("erp event rejected: %s %s", status, getattr(exc, "title", ""),
                            extra={"connector": connector, "event_type": event_type})
            raise
        finally:
            _intake_labels.reset(token)


def _intake_answered(duplicate: bool) -> None:
    labels = _intake_labels.get()
    metrics.ERP_EVENTS.labels(*(labels or ("unknown", "unknown")), "duplicate" if duplicate else "accepted").inc()
    if duplicate:
        logger.info("erp event duplicate, nothing changed")


def intake_parsed(connector_slug: str, envelope: dict[str, Any]) -> None:
    """The event passed its signature and shape checks: from here on it has an id and labels."""
    event_type = envelope["type"] if _lookups["event_type_known"](envelope["type"]) else "unsupported"  # bounded
    _intake_labels.set((connector_slug, event_type))
    context.bind(event_id=context.event_key(connector_slug, envelope["id"]))


def _known_connector(slug: str, known: bool | None = None) -> str:
    """The slug as a label only when it names a connector: the URL is anyone's to choose."""
    if known is not None:
        return slug if known else "unknown"
    try:
        return slug if _lookups["connector_known"](slug) else "unknown"
    except Exception:
        return "unknown"


# --- Cards ----------------------------------------------------------------------------------


def delivery_started(delivery: Any) -> None:
    """A send of ``delivery`` begins: its event id, from the row when no caller carried it in."""
    context.bind_missing(event_id=context.event_id_from_dedupe_key(delivery.dedupe_key))


def card_outcome(delivery: Any, outcome: str, detail: str = "") -> None:
    """``outcome``: sent, retry, dead or skipped."""
    metrics.CARDS.labels(delivery.platform, outcome).inc()
    if outcome == "retry":
        metrics.DELIVERY_RETRIES.labels(delivery.platform).inc()
    elif outcome == "dead":
        metrics.DEAD_LETTERS.labels("delivery").inc()
    if outcome in ("sent", "skipped"):  # retry and dead are logged (warning, error) by im.services
        logger.info("card %s", outcome, extra={
            "delivery_id": delivery.pk, "platform": delivery.platform, "topic": delivery.topic,
            "attempts": delivery.attempts, **({"detail": detail} if detail else {}),
        })


# --- Decisions and writebacks ---------------------------------------------------------------


def event_id_of_topic(topic: str) -> str:
    """The ERP event behind a document's topic: the one its latest event-born cards came from."""
    keys = _lookups["dedupe_keys_of_topic"](topic)
    return next((found for key in keys if (found := context.event_id_from_dedupe_key(key))), "")


def decided(decision: Any, document: Any) -> None:
    """A decision row was written (in decide()'s transaction): the rest of this request, and the
    writeback it queues, carry the document's event id."""
    try:
        context.bind(event_id=event_id_of_topic(document.topic) or None)
    except Exception:  # an id for the logs is never worth refusing a decision
        logger.exception("event id of %s not found", document.topic)
    logger.info("decision recorded", extra={
        "decision_id": decision.pk, "document_id": document.pk, "outcome": decision.outcome, "via": decision.via,
    })


def writeback_started(decision: Any) -> None:
    if not context.event_id.get():  # a beat re-queue or an admin retry carries none in
        context.bind(event_id=event_id_of_topic(decision.document.topic) or None)


def writeback_retry(decision: Any) -> None:
    metrics.WRITEBACKS.labels(_connector_of(decision), "retry").inc()


def writeback_finished(decision: Any, status: str) -> None:
    """``status``: done, failed or conflict (a Decision.Writeback value)."""
    connector = _connector_of(decision)
    metrics.WRITEBACKS.labels(connector, status).inc()
    if status == "done":
        latency = (timezone.now() - decision.created_at).total_seconds()
        metrics.WRITEBACK_LATENCY.labels(connector).observe(max(latency, 0.0))
    elif status == "failed":
        metrics.DEAD_LETTERS.labels("writeback").inc()
    log = logger.info if status == "done" else logger.warning
    log("erp writeback %s", status, extra={
        "decision_id": decision.pk, "document_id": decision.document_id, "attempts": decision.writeback_attempts,
    })


def _connector_of(decision: Any) -> str:
    return decision.document.connector.slug
