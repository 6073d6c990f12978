"""Chinese and English dates and periods ("上个月", "本季度", "last week", "3月") as exact date ranges.

The parser keeps a period as a stable key ("last_month", "month:3", "days:7"); ``resolve`` turns it
into first and last day (inclusive) for a given "today", which the caller takes in the asker's time
zone, so "今天" at 00:30 in Shanghai is not yesterday in UTC.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils import timezone


@dataclass(frozen=True)
class Period:
    key: str
    start: dt.date
    end: dt.date  # inclusive

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "start": self.start.isoformat(), "end": self.end.isoformat()}

    def contains(self, day: dt.date | None) -> bool:
        return day is not None and self.start <= day <= self.end


ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
MONTHS_EN = {name: i for i, name in enumerate(calendar.month_name) if name} | {
    name: i for i, name in enumerate(calendar.month_abbr) if name} | {"sept": 9}
MONTHS_EN = {k.lower(): v for k, v in MONTHS_EN.items()}


def _zh_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text in ZH_DIGITS:
        return ZH_DIGITS[text]
    if text.startswith("十") and text[1:] in ZH_DIGITS:  # 十一, 十二
        return 10 + ZH_DIGITS[text[1:]]
    if len(text) == 2 and text[1] == "十" and text[0] in ZH_DIGITS:  # 二十
        return ZH_DIGITS[text[0]] * 10
    return None


# (pattern, key) in order; the first match wins. Text is NFKC-normalised and lower-case.
_FIXED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), key)
    for p, key in [
        (r"今天|今日|today", "today"),
        (r"昨天|昨日|yesterday", "yesterday"),
        (r"上上周|上上个?星期", "week_before_last"),
        (r"本周|这周|这一?个?星期|本星期|这礼拜|本礼拜|this\s*week|current\s*week", "this_week"),
        (r"上周|上个?星期|上礼拜|last\s*week|past\s*week|previous\s*week", "last_week"),
        (r"下周|下个?星期|next\s*week", "next_week"),
        (r"本月|这个?月|当月|this\s*month|current\s*month|\bmtd\b", "this_month"),
        (r"上个?月|last\s*month|previous\s*month|past\s*month", "last_month"),
        (r"下个?月|next\s*month", "next_month"),
        (r"本季度?|这个?季度|本季|this\s*quarter|current\s*quarter|\bqtd\b", "this_quarter"),
        (r"上个?季度|last\s*quarter|previous\s*quarter", "last_quarter"),
        (r"今年|本年度?|this\s*year|\bytd\b", "this_year"),
        (r"去年|上一?年|last\s*year", "last_year"),
    ]
]
_DAYS = re.compile(r"(?:最近|近|过去)\s*(\d+|[一二两三四五六七八九十]+)\s*天|(?:last|past)\s*(\d+)\s*days")
_QUARTER = re.compile(r"(?:第)?([1-4一二三四])\s*季度|\bq([1-4])\b")
_ZH_MONTH = re.compile(r"(?<!\d)(1[0-2]|0?[1-9]|十[一二]?|[一二三四五六七八九])\s*月(?:份)?(?!\s*\d+\s*[日号])")
_EN_MONTH = re.compile(r"\b(" + "|".join(sorted(MONTHS_EN, key=len, reverse=True)) + r")\b")


def find_period(text: str) -> tuple[str, tuple[int, int]] | None:
    """The period key named in ``text`` and where it was found, or None."""
    text = text.lower()
    for pattern, key in _FIXED:
        m = pattern.search(text)
        if m:
            return key, m.span()
    m = _DAYS.search(text)
    if m:
        n = _zh_number(m.group(1) or m.group(2) or "")
        if n:
            return f"days:{n}", m.span()
    m = _QUARTER.search(text)
    if m:
        n = _zh_number(m.group(1) or m.group(2))
        return f"quarter:{n}", m.span()
    m = _ZH_MONTH.search(text)
    if m:
        n = _zh_number(m.group(1).lstrip("0") or "0")
        if n and 1 <= n <= 12:
            return f"month:{n}", m.span()
    m = _EN_MONTH.search(text)
    # "may" is also a verb; only as a month after "in"/"of"/"during" or before a year.
    if m and (m.group(1) not in {"may", "mar", "jun", "dec", "jan"} or re.search(
            r"(in|of|during|since)\s+" + m.group(1) + r"\b", text)):
        return f"month:{MONTHS_EN[m.group(1)]}", m.span()
    return None


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _quarter_range(year: int, quarter: int) -> tuple[dt.date, dt.date]:
    first = 3 * (quarter - 1) + 1
    return dt.date(year, first, 1), _month_range(year, first + 2)[1]


def today_for(time_zone: str) -> dt.date:
    return timezone.localdate(timezone=ZoneInfo(time_zone))


def resolve(key: str, today: dt.date) -> Period:
    """First and last day of ``key`` around ``today`` (weeks start on Monday; a named month or quarter
    is the latest one that has begun: in February, "11月" is last November)."""
    monday = today - dt.timedelta(days=today.weekday())
    quarter = (today.month - 1) // 3 + 1
    if key == "today":
        return Period(key, today, today)
    if key == "yesterday":
        day = today - dt.timedelta(days=1)
        return Period(key, day, day)
    if key == "this_week":
        return Period(key, monday, monday + dt.timedelta(days=6))
    if key == "last_week":
        return Period(key, monday - dt.timedelta(days=7), monday - dt.timedelta(days=1))
    if key == "week_before_last":
        return Period(key, monday - dt.timedelta(days=14), monday - dt.timedelta(days=8))
    if key == "next_week":
        return Period(key, monday + dt.timedelta(days=7), monday + dt.timedelta(days=13))
    if key == "this_month":
        return Period(key, *_month_range(today.year, today.month))
    if key in ("last_month", "next_month"):
        first = today.replace(day=1)
        other = first - dt.timedelta(days=1) if key == "last_month" else first + dt.timedelta(days=32)
        return Period(key, *_month_range(other.year, other.month))
    if key == "this_quarter":
        return Period(key, *_quarter_range(today.year, quarter))
    if key == "last_quarter":
        year, q = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)
        return Period(key, *_quarter_range(year, q))
    if key == "this_year":
        return Period(key, dt.date(today.year, 1, 1), dt.date(today.year, 12, 31))
    if key == "last_year":
        return Period(key, dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31))
    kind, _, number = key.partition(":")
    n = int(number)
    if kind == "days":
        return Period(key, today - dt.timedelta(days=n - 1), today)
    if kind == "month":
        year = today.year if n <= today.month else today.year - 1
        return Period(key, *_month_range(year, n))
    if kind == "quarter":
        year = today.year if n <= quarter else today.year - 1
        return Period(key, *_quarter_range(year, n))
    raise ValueError(f"unknown period {key}")
