"""Mirror receivable events. Widgets and the bot read them through ``finance.selectors``."""

from __future__ import annotations

from django.utils.dateparse import parse_date

from erp.events import ErpEvent, EventDataError
from finance.models import Receivable
from inventory.services import _dec, _str
from widgets.live import publish
from widgets.topics import scope_topic, version_of


def _date(data: dict, key: str, *, required: bool = True):
    raw = _str(data, key, required=required, max_length=10)
    if not raw:
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise EventDataError(f"{key} must be a date, YYYY-MM-DD")
    return value


def handle_receivable_changed(event: ErpEvent) -> None:
    data = event.data.get("receivable")
    if not isinstance(data, dict):
        raise EventDataError("receivable must be an object")
    receivable, created = Receivable.objects.select_for_update().get_or_create(
        connector=event.connector,
        external_id=_str(data, "id", max_length=100),
        defaults={"customer": "", "amount": 0, "due_date": _date(data, "due_date")},
    )
    receivable.customer = _str(data, "customer")
    receivable.project = _str(data, "project", required=False, max_length=100)
    receivable.amount = _dec(data, "amount")
    receivable.paid = _dec(data, "paid", "0")
    receivable.currency = (_str(data, "currency", required=False, max_length=3) or "CNY").upper()
    receivable.due_date = _date(data, "due_date")
    receivable.last_payment_date = _date(data, "last_payment_date", required=False)
    receivable.sales_rep_login = _str(data, "sales_rep", required=False, max_length=150)
    if not created:
        receivable.version += 1
    receivable.save()
    version = version_of(receivable.updated_at)
    publish(scope_topic("receivables", "customer", receivable.customer), version)
    if receivable.project:
        publish(scope_topic("receivables", "project", receivable.project), version)


RECEIVABLE_CHANGED = {
    "type": "object",
    "required": ["receivable"],
    "properties": {
        "receivable": {
            "type": "object",
            "required": ["id", "customer", "amount", "due_date"],
            "properties": {
                "id": {"type": "string", "examples": ["INV-2026-0301"]},
                "customer": {"type": "string", "examples": ["华东电子"]},
                "project": {"type": "string", "examples": ["项目A"]},
                "amount": {"type": "string", "examples": ["120000.00"]},
                "paid": {"type": "string", "default": "0"},
                "currency": {"type": "string", "default": "CNY"},
                "due_date": {"type": "string", "format": "date"},
                "last_payment_date": {"type": "string", "format": "date"},
                "sales_rep": {"type": "string", "description": "ERP login"},
            },
        }
    },
}
