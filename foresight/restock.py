"""Reorder point and quantity from a weekly forecast, the supplier's lead time and a service level.

reorder point = forecast demand over the lead time + safety stock,
safety stock  = z(service level) × σ(weekly error) × √(lead time in weeks),
order up to   = reorder point + forecast demand over the review period,
and a suggestion when the stock position (on hand − reserved + on order) is at or below the reorder point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Plan:
    lead_time_weeks: float
    lead_time_demand: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    position: float
    quantity: int  # 0: nothing to order now
    days_of_cover: float


def demand_over(weekly: np.ndarray, weeks: float, skip: float = 0.0) -> float:
    """Forecast demand over ``weeks`` weeks starting ``skip`` weeks from now (fractions pro rata)."""
    total, t, end = 0.0, skip, skip + weeks
    while t < end - 1e-9:
        k = int(math.floor(t))
        upto = min(end, k + 1)
        value = weekly[k] if k < len(weekly) else (weekly[-1] if len(weekly) else 0.0)
        total += float(value) * (upto - t)
        t = upto
    return total


def plan(weekly: np.ndarray, sigma: float, *, lead_time_days: int, position: float, service_level: float,
         review_weeks: float) -> Plan:
    lead = max(lead_time_days, 1) / 7
    z = NormalDist().inv_cdf(min(max(service_level, 0.5), 0.9999))
    lead_demand = demand_over(weekly, lead)
    safety = z * sigma * math.sqrt(lead)
    reorder_point = lead_demand + safety
    order_up_to = reorder_point + demand_over(weekly, review_weeks, skip=lead)
    quantity = math.ceil(order_up_to - position) if position <= reorder_point else 0
    per_day = float(np.mean(weekly[: max(int(math.ceil(lead)), 1)])) / 7 if len(weekly) else 0.0
    cover = position / per_day if per_day > 0 else float("inf")
    return Plan(lead, lead_demand, safety, reorder_point, order_up_to, position, max(quantity, 0), cover)
