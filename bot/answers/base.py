"""What an answer is, and locale-aware formatting of amounts, quantities and dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.urls import NoReverseMatch, reverse

from bot.periods import Period
from im.cards import CardAction, CardField
from portal import formatting


@dataclass
class Context:
    user: Any
    language: str  # "zh-hans" or "en"
    today: dt.date  # in the asker's time zone
    period: Period | None = None
    total: int | None = None  # how many there are in all, when a list shows fewer

    @property
    def locale(self) -> str:
        return "zh_Hans_CN" if self.language.startswith("zh") else "en_US"


@dataclass
class Answer:
    title: str
    fields: list[CardField] = field(default_factory=list)
    amount: str = ""
    link: str = ""  # a portal path (the live widget) for more
    note: str = ""
    status: str = "answer"
    actions: list[CardAction] = field(default_factory=list)

    @property
    def text(self) -> str:
        lines = [self.title]
        if self.amount:
            lines.append(self.amount)
        lines += [f"{f.label}: {f.value}" for f in self.fields]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def money(amount: Decimal, currency: str, ctx: Context) -> str:
    return formatting.money(amount, currency, ctx.language)


def quantity(value: Decimal, ctx: Context) -> str:
    return formatting.number(value, ctx.language)


def day(value: dt.date | None, ctx: Context) -> str:
    return formatting.day(value, ctx.language)


def period_label(period: Period, ctx: Context) -> str:
    return f"{day(period.start, ctx)} – {day(period.end, ctx)}"


def widget_path(name: str, *args: Any) -> str:
    """The live widget page for more, when the widgets app provides it."""
    try:
        return reverse(f"widgets:{name}", args=args)
    except NoReverseMatch:
        return ""
