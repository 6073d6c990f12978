"""Reading receivables, always through ``restrict()``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from finance.models import Receivable
from sso.authz import restrict

# Overdue buckets by days past due: (label, first day, last day or None)
BUCKETS = [("current", 0, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None)]


def receivables_for(user: Any, *, project: str = "", customer: str = "") -> QuerySet[Receivable]:
    queryset = Receivable.objects.all()
    if project:
        queryset = queryset.filter(project=project)
    if customer:
        queryset = queryset.filter(customer=customer)
    return restrict(queryset, user, "receivables.view").order_by("due_date", "external_id")


@dataclass
class CurrencyTotals:
    currency: str
    amount: Decimal = Decimal("0")
    outstanding: Decimal = Decimal("0")
    overdue: Decimal = Decimal("0")
    buckets: dict[str, Decimal] = field(default_factory=lambda: {label: Decimal("0") for label, *_ in BUCKETS})


@dataclass
class ReceivablesSummary:
    rows: list[Receivable]
    totals: list[CurrencyTotals]
    last_payment: dt.date | None
    open_count: int


def bucket_of(days_overdue: int) -> str:
    for label, first, last in BUCKETS:
        if days_overdue >= first and (last is None or days_overdue <= last):
            return label
    return BUCKETS[-1][0]


def summarize(receivables: QuerySet[Receivable] | list[Receivable], today: dt.date) -> ReceivablesSummary:
    totals: dict[str, CurrencyTotals] = {}
    rows = list(receivables)
    last_payment = None
    for receivable in rows:
        total = totals.setdefault(receivable.currency, CurrencyTotals(receivable.currency))
        total.amount += receivable.amount
        outstanding = receivable.outstanding
        total.outstanding += outstanding
        days = receivable.days_overdue(today)
        if outstanding:
            total.buckets[bucket_of(days)] += outstanding
            if days:
                total.overdue += outstanding
        if receivable.last_payment_date and (last_payment is None or receivable.last_payment_date > last_payment):
            last_payment = receivable.last_payment_date
    return ReceivablesSummary(
        rows=rows,
        totals=sorted(totals.values(), key=lambda t: t.currency),
        last_payment=last_payment,
        open_count=sum(1 for r in rows if r.outstanding),
    )
