"""Template filters over ``portal.formatting``: ``{{ doc.amount|money:doc.currency }}``,
``{{ level.quantity|qty }}``, ``{{ invoice.due_date|day }}``, ``{{ entry.at|moment }}``."""

from __future__ import annotations

import datetime as dt

from django import template

from portal import formatting

register = template.Library()


@register.filter
def money(amount: object, currency: str = "CNY") -> str:
    return formatting.money(amount, currency)


@register.filter
def qty(value: object) -> str:
    return formatting.number(value)


@register.filter
def day(value: dt.date | dt.datetime | None) -> str:
    return formatting.day(value)


@register.filter
def moment(value: dt.datetime | None) -> str:
    return formatting.moment(value)


@register.filter
def ageing_class(bucket: str) -> str:
    """The colour class of an overdue bucket, the same as in the ageing bar."""
    return formatting.AGEING_CLASSES.get(bucket, "age4")
