"""Mirror receivable events. Widgets and the bot read them through ``finance.selectors``."""

from __future__ import annotations

from decimal import Decimal

from erp.events import ErpEvent
from erp.payload import DECIMAL_SCHEMA, date, decimal_for, read, text
from finance.models import Receivable
from widgets.live import publish
from widgets.topics import scope_topic, version_of


def handle_receivable_changed(event: ErpEvent) -> None:
    data = read(event.data)["receivable"]
    data.object()
    receivable, created = Receivable.objects.select_for_update().get_or_create(
        connector=event.connector,
        external_id=data["id"].tame(text(max_length=100)),
        defaults={"customer": "", "amount": 0, "due_date": data["due_date"].tame(date())},
    )
    receivable.customer = data["customer"].tame(text(max_length=200))
    receivable.project = data["project"].tame(text(max_length=100, required=False))
    receivable.amount = data["amount"].tame(decimal_for(Receivable, "amount"))
    receivable.paid = data["paid"].tame(decimal_for(Receivable, "paid", default=Decimal("0")))
    receivable.currency = (data["currency"].tame(text(max_length=3, required=False)) or "CNY").upper()
    receivable.due_date = data["due_date"].tame(date())
    receivable.last_payment_date = data["last_payment_date"].tame(date(required=False))
    receivable.sales_rep_login = data["sales_rep"].tame(text(max_length=150, required=False))
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
                "amount": {**DECIMAL_SCHEMA, "examples": ["120000.00"]},
                "paid": {**DECIMAL_SCHEMA, "default": "0"},
                "currency": {"type": "string", "default": "CNY"},
                "due_date": {"type": "string", "format": "date"},
                "last_payment_date": {"type": "string", "format": "date"},
                "sales_rep": {"type": "string", "description": "ERP login"},
            },
        }
    },
}
