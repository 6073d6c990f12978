"""Receivables as subjects of events and notifications (registered in ``FinanceConfig.ready``)."""

from __future__ import annotations

from erp.events import ErpEvent
from erp.subjects import EventSubject, event_data, money
from finance.models import Receivable


def from_event(event: ErpEvent) -> EventSubject | None:
    rec_id = str((event_data(event).get("receivable") or {}).get("id", ""))
    rec = Receivable.objects.filter(connector=event.connector, external_id=rec_id).first()
    if rec is None:
        return None
    facts = {"number": rec.external_id, "customer": rec.customer, "project": rec.project,
             "amount": money(rec.amount), "amount_value": str(rec.amount), "currency": rec.currency}
    return EventSubject(f"receivable.{rec.pk}", rec, "receivables.view", facts, "")


def from_id(pk: int) -> EventSubject | None:
    rec = Receivable.objects.filter(pk=pk).first()
    return rec and EventSubject(f"receivable.{pk}", rec, "receivables.view",
                                {"number": rec.external_id, "customer": rec.customer})
