"""How unusual an expense claim is: a robust z-score of the amount's logarithm against the category's
history and against the requester's own history in that category (median and MAD, so a few earlier
outliers do not hide the next one). The score is the larger of the two; a requester with fewer than
``min_own`` earlier claims in the category is judged against the category only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Stats:
    median: float  # of amounts
    log_median: float
    log_spread: float  # MAD of log amounts × 1.4826, floored
    count: int


def _stats(amounts: list[float]) -> Stats:
    logs = np.log(np.array(amounts))
    log_median = float(np.median(logs))
    spread = max(MAD_TO_SIGMA * float(np.median(np.abs(logs - log_median))), 0.1)
    return Stats(float(np.median(amounts)), log_median, spread, len(amounts))


def fit(claims: Iterable, *, exclude: set[str] = frozenset()) -> dict[str, dict]:
    """Per category and per requester × category, from approved claims (rejected ones are not the norm)."""
    by_category: dict[str, list[float]] = defaultdict(list)
    by_requester: dict[str, list[float]] = defaultdict(list)
    for c in claims:
        if c.state != "approved" or c.id in exclude or float(c.amount) <= 0:
            continue
        by_category[c.category].append(float(c.amount))
        by_requester[f"{c.requester}|{c.category}"].append(float(c.amount))
    return {
        "category": {k: _stats(v).__dict__ for k, v in by_category.items() if len(v) >= 5},
        "requester": {k: _stats(v).__dict__ for k, v in by_requester.items() if len(v) >= 3},
    }


@dataclass(frozen=True)
class Assessment:
    score: float
    category_median: float | None
    category_ratio: float | None
    requester_median: float | None
    requester_ratio: float | None
    reasons: list[dict]


def assess(stats: dict[str, dict], requester: str, category: str, amount: float, *, min_own: int = 5) -> Assessment:
    """The claim's score (robust z, log scale) and the reasons in codes with values."""
    cat = stats["category"].get(category)
    own = stats["requester"].get(f"{requester}|{category}")
    if own is not None and own["count"] < min_own:
        own = None
    value = math.log(max(amount, 0.01))
    scores, reasons = [], []
    cat_ratio = own_ratio = None
    if cat is not None:
        z = (value - cat["log_median"]) / cat["log_spread"]
        cat_ratio = amount / cat["median"]
        scores.append(z)
        reasons.append({"code": "category", "ratio": round(cat_ratio, 1), "median": round(cat["median"], 2),
                        "count": cat["count"], "z": round(z, 2)})
    if own is not None:
        z = (value - own["log_median"]) / own["log_spread"]
        own_ratio = amount / own["median"]
        scores.append(z)
        reasons.append({"code": "requester", "ratio": round(own_ratio, 1), "median": round(own["median"], 2),
                        "count": own["count"], "z": round(z, 2)})
    reasons.sort(key=lambda r: -r["z"])
    return Assessment(max(scores) if scores else 0.0, cat["median"] if cat else None, cat_ratio,
                      own["median"] if own else None, own_ratio, reasons)
