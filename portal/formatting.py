"""One format for money, quantities and dates, from the active language (the viewer's profile or
the recipient's, see ``sso.models.language_of``), through Babel's CLDR data. Cards, lists, widgets,
the demo ERP console and the bot all go through these functions (or the ``portal_format`` template
filters over them), so "CNY 12,800.00" beside "12800.00 CNY" cannot happen again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal
from django.utils import timezone, translation

EMPTY = "—"


def babel_locale(language: str | None = None) -> str:
    """The CLDR locale of a Django language code (the active one by default)."""
    language = (language or translation.get_language() or "zh-hans").lower()
    return "zh_Hans_CN" if language.startswith("zh") else "en_US"


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def money(amount: object, currency: str = "CNY", language: str | None = None) -> str:
    """``¥12,800.00`` / ``CN¥12,800.00``: the amount with its currency the reader's way."""
    value = _decimal(amount)
    if value is None:
        return EMPTY
    return format_currency(value, currency or "CNY", locale=babel_locale(language))


def number(value: object, language: str | None = None, *, decimals: int | None = None) -> str:
    """A quantity or plain amount with the reader's grouping; trailing zeros dropped unless
    ``decimals`` fixes them."""
    quantity = _decimal(value)
    if quantity is None:
        return EMPTY
    if decimals is not None:
        pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
        return format_decimal(quantity, format=pattern, locale=babel_locale(language))
    normal = quantity.normalize() if quantity else Decimal(0)
    if normal == normal.to_integral():
        normal = normal.quantize(Decimal(1))
    return format_decimal(normal, locale=babel_locale(language))


def day(value: dt.date | dt.datetime | None, language: str | None = None) -> str:
    """``2026年12月30日`` / ``Dec 30, 2026``; a datetime is shown in the active time zone."""
    if not value:
        return EMPTY
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return format_date(value, format="medium", locale=babel_locale(language))


def moment(value: dt.datetime | None, language: str | None = None) -> str:
    """Month, day and time in the active time zone: ``12月30日 14:05`` / ``Dec 30, 14:05``."""
    if not value:
        return EMPTY
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    locale = babel_locale(language)
    return f"{format_skeleton('MMMd', local, locale=locale)} {local:%H:%M}"


# The colour class of each overdue bucket: the ageing bar (widgets.charts) and lists (``ageing_class``).
AGEING_CLASSES = {"current": "age0", "1-30": "age1", "31-60": "age2", "61-90": "age3", "90+": "age4"}
