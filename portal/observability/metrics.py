"""Our Prometheus metrics (django-prometheus adds ``django_http_*`` and ``django_db_*``).

Several Daphne processes and Celery workers: set PROMETHEUS_MULTIPROC_DIR (an empty directory,
emptied at each deploy) in every process's environment before it starts; prometheus_client then
writes each process's values there and /metrics adds them up (``views.metrics``). Unset, each
process counts for itself (the embedded demo, tests).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ERP_EVENTS = Counter(
    "portal_erp_events", "ERP events at the intake, by outcome (accepted, duplicate, rejected)",
    ["connector", "type", "outcome"],
)
ERP_EVENTS_HANDLED = Counter(
    "portal_erp_events_handled", "Stored ERP events handled by workers, by outcome (processed, failed)",
    ["connector", "type", "outcome"],
)
ERP_BATCH_FALLBACKS = Counter(
    "portal_erp_batch_fallbacks",
    "Runs of stored ERP events whose set-based handling failed and that were handled one by one instead",
    ["type"],
)
CARDS = Counter(
    "portal_im_cards", "Card sends by outcome: sent, retry (a failed attempt to be repeated), dead, skipped",
    ["platform", "outcome"],
)
DELIVERY_RETRIES = Counter("portal_delivery_retries", "Failed card sends scheduled again", ["platform"])
DEAD_LETTERS = Counter(
    "portal_dead_letters", "Work that gave up: kind=delivery (a card) or writeback (a decision the ERP never took)",
    ["kind"],
)
WRITEBACKS = Counter(
    "portal_erp_writebacks", "ERP writebacks by outcome: done, retry, failed, conflict", ["connector", "outcome"],
)
WRITEBACK_LATENCY = Histogram(
    "portal_erp_writeback_latency_seconds", "Decision committed → the ERP confirmed it",
    ["connector"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600),
)
WEBSOCKETS = Gauge(
    "portal_websocket_connections", "Open websocket connections (live updates)",
    multiprocess_mode="livesum",  # the sum over the processes that are alive
)
BOT_ANSWER_SECONDS = Histogram(
    "portal_bot_answer_seconds", "The chat bot's ask(): question in → answer ready",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
