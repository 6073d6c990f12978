"""Small charts drawn on the server as plain SVG: no JavaScript, no build step, a few hundred bytes
each, readable offline in any IM webview. Every chart carries its meaning in words too (``<title>``
and ``aria-label``), so a screen reader, a text-only client and a test read the same thing."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from portal import formatting
from portal.formatting import AGEING_CLASSES

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 40, 8, 10, 22  # room for the axis labels
# One-sided z of the forecast band: 80 % of weeks are expected inside it.
BAND_Z = 1.2816


@dataclass(frozen=True)
class ForecastPoint:
    day: dt.date
    expected: float
    low: float
    high: float


def project_stock(available: float, weekly_demand: Sequence[float], sigma: float, start: dt.date,
                  weeks: int = 8) -> list[ForecastPoint]:
    """Available stock week by week if nothing is received: today's available minus the forecast
    demand so far, with a band of ±z·σ·√h (the error of h weeks of forecasts adds up)."""
    points = [ForecastPoint(start, available, available, available)]
    left = available
    for h, demand in enumerate(list(weekly_demand)[:weeks], start=1):
        left -= max(float(demand), 0.0)
        spread = BAND_Z * max(sigma, 0.0) * math.sqrt(h)
        points.append(ForecastPoint(start + dt.timedelta(weeks=h), left, left - spread, left + spread))
    return points


NOTHING = SafeString("")


def _join(parts: list[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def stock_chart(history: Sequence[tuple[dt.date, float]], forecast: Sequence[ForecastPoint],
                safety_level: float, unit: str = "") -> SafeString:
    """Recent available stock (solid), its projection with the forecast band (dashed, shaded) and
    the safety level (red), one line per warehouse's series."""
    days = [d for d, _q in history] + [p.day for p in forecast]
    values = [q for _d, q in history] + [v for p in forecast for v in (p.low, p.high)] + [safety_level]
    if not days:
        return NOTHING
    first, last = min(days), max(days)
    span = max((last - first).days, 1)
    low, high = min(min(values), 0.0), max(max(values), 1.0)
    if high - low < 1:
        high = low + 1

    def x(day: dt.date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - first).days / span

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / (high - low)

    parts = []
    summary = []
    if forecast:
        band = [(x(p.day), y(p.high)) for p in forecast] + [(x(p.day), y(p.low)) for p in reversed(forecast)]
        parts.append(format_html('<polygon class="band" points="{}"/>', _path(band)))
        parts.append(format_html('<polyline class="forecast" points="{}"/>',
                                 _path([(x(p.day), y(p.expected)) for p in forecast])))
        end = forecast[-1]
        summary.append(_("in %(weeks)s weeks about %(expected)s (%(low)s to %(high)s) if nothing arrives") % {
            "weeks": len(forecast) - 1, "expected": formatting.number(round(end.expected)),
            "low": formatting.number(round(end.low)), "high": formatting.number(round(end.high))})
    if history:
        parts.append(format_html('<polyline class="past" points="{}"/>', _path([(x(d), y(q)) for d, q in history])))
        summary.insert(0, _("available now %(now)s %(unit)s") % {
            "now": formatting.number(history[-1][1]), "unit": unit})
    if safety_level > 0:
        level_y = f"{y(safety_level):.1f}"
        parts.append(format_html('<line class="safety" x1="{}" x2="{}" y1="{}" y2="{}"/>',
                                 LEFT, WIDTH - RIGHT, level_y, level_y))
        summary.append(_("safety level %(level)s") % {"level": formatting.number(safety_level)})
    axis = [
        format_html('<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>', LEFT, LEFT, TOP, HEIGHT - BOTTOM),
        format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 4, f"{y(high) + 4:.1f}",
                    formatting.number(round(high))),
        format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', LEFT - 4, f"{y(low):.1f}",
                    formatting.number(round(low))),
        format_html('<text x="{}" y="{}">{}</text>', LEFT, HEIGHT - 6, formatting.day(first)),
        format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', WIDTH - RIGHT, HEIGHT - 6, formatting.day(last)),
    ]
    label = "; ".join(summary)
    return format_html(
        '<svg class="chart stock-chart" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}</svg>',
        WIDTH, HEIGHT, label, label, _join(axis), _join(parts),
    )




def bucket_label(bucket: str) -> str:
    return _("Not yet due") if bucket == "current" else _("%(range)s days overdue") % {"range": bucket}


def ageing_bar(buckets: dict, currency: str) -> SafeString:
    """What is outstanding by age, as one bar: not yet due (green) to 90+ days overdue (dark red)."""
    total = sum(float(v) for v in buckets.values())
    if total <= 0:
        return NOTHING
    width, height, x = 320.0, 18.0, 0.0
    rects, words = [], []
    for bucket, amount in buckets.items():
        share = float(amount) / total
        if share <= 0:
            continue
        w = width * share
        text = f"{bucket_label(bucket)} {formatting.money(amount, currency)}"
        words.append(text)
        rects.append(format_html('<rect class="{}" x="{}" y="0" width="{}" height="{}"><title>{}</title></rect>',
                                 AGEING_CLASSES.get(bucket, "age4"), f"{x:.1f}", f"{w:.1f}", f"{height:.0f}", text))
        x += w
    label = "; ".join(words)
    return format_html(
        '<svg class="chart ageing" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        f"{width:.0f}", f"{height:.0f}", label, label, _join(rects),
    )


def cover_bar(position: float, reorder_point: float, suggested: float) -> SafeString:
    """Where an item stands against its reorder point: available + on order (blue), the suggested
    order on top (dashed), the reorder point as a red tick."""
    scale = max(position + suggested, reorder_point, 1.0)
    width, height = 200.0, 14.0
    have = width * max(position, 0.0) / scale
    order = width * max(suggested, 0.0) / scale
    tick = width * reorder_point / scale
    label = _("available + on order %(position)s, reorder point %(rop)s, suggested order %(qty)s") % {
        "position": formatting.number(round(position)), "rop": formatting.number(round(reorder_point)),
        "qty": formatting.number(round(suggested))}
    return format_html(
        '<svg class="chart cover" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        '<title>{}</title><rect class="have" x="0" y="2" width="{}" height="10"/>'
        '<rect class="order" x="{}" y="2" width="{}" height="10"/>'
        '<line class="safety" x1="{}" x2="{}" y1="0" y2="{}"/></svg>',
        f"{width:.0f}", f"{height:.0f}", label, label, f"{have:.1f}", f"{have:.1f}", f"{order:.1f}",
        f"{tick:.1f}", f"{tick:.1f}", f"{height:.0f}",
    )


def probability_bar(probability: float) -> SafeString:
    """The probability of being paid late as a filled share of a bar, red from one half on."""
    p = min(max(probability, 0.0), 1.0)
    label = _("%(pct)s likely to be paid late") % {"pct": f"{p * 100:.0f}%"}
    return format_html(
        '<svg class="chart probability" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title><rect class="track" x="0" y="0" width="100" height="10"/>'
        '<rect class="{}" x="0" y="0" width="{}" height="10"/></svg>',
        label, label, "high" if p >= 0.5 else "low", f"{p * 100:.1f}",
    )
