"""Observability: request and event ids in every log line, Prometheus metrics, readiness checks.

- ``context``: the ids (contextvars) and how they cross requests, tasks and sockets.
- ``logging``: JSON or plain formatters that carry the ids and never print secrets.
- ``metrics``: our counters and histograms (django-prometheus adds requests and database).
- ``hooks``: the one-line calls the loop makes (intake, card sent, decision, writeback).
- ``middleware``, ``celery``, ``readiness``, ``views``: where the ids enter; /readyz and /metrics.
"""
