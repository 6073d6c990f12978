"""Read side: the auditors' export of decisions and deliveries in a date range."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder

DECISION_FIELDS = [
    "kind", "id", "at", "document", "outcome", "actor", "on_behalf_of", "via", "writeback_status", "written_back_at",
]
DELIVERY_FIELDS = ["kind", "id", "at", "topic", "recipient", "platform", "status", "attempts", "sent_at"]
EXPORT_FIELDS = list(dict.fromkeys(DECISION_FIELDS + DELIVERY_FIELDS))


def export_rows(start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
    """Decisions, then deliveries, created in [start, end): who, what, when; never card texts or comments."""
    from approvals.models import Decision
    from im.models import Delivery

    decisions = (
        Decision.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("document", "actor", "on_behalf_of")
        .order_by("created_at", "pk")
    )
    for d in decisions.iterator(chunk_size=1000):
        yield {
            "kind": "decision", "id": d.pk, "at": d.created_at, "document": d.document.external_id,
            "outcome": d.outcome, "actor": d.actor.get_username(),
            "on_behalf_of": d.on_behalf_of.get_username() if d.on_behalf_of else "", "via": d.via,
            "writeback_status": d.writeback_status, "written_back_at": d.written_back_at,
        }
    deliveries = (
        Delivery.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("recipient")
        .order_by("created_at", "pk")
    )
    for v in deliveries.iterator(chunk_size=1000):
        yield {
            "kind": "delivery", "id": v.pk, "at": v.created_at, "topic": v.topic,
            "recipient": v.recipient.get_username() if v.recipient else "", "platform": v.platform, "status": v.status,
            "attempts": v.attempts, "sent_at": v.sent_at,
        }


def export_csv(start: dt.datetime, end: dt.datetime) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in export_rows(start, end):
        writer.writerow({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()})
    return out.getvalue()


def export_json(start: dt.datetime, end: dt.datetime) -> str:
    return json.dumps(
        {"from": start, "to": end, "rows": list(export_rows(start, end))},
        cls=DjangoJSONEncoder, ensure_ascii=False, indent=1,
    )
