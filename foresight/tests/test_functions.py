"""The plain functions on small synthetic data: forecasts, reorder points, late-payment model, expense score."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest

from foresight import anomaly, credit, demand, restock


def seasonal(weeks: int = 104, trend: float = 0.0, noise: float = 0.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(weeks)
    return 50 + trend * t + 20 * np.sin(2 * np.pi * t / 52) + rng.normal(0, noise, weeks)


def test_seasonal_naive_repeats_last_year():
    y = seasonal()
    f, sigma = demand.forecast(y, "snaive", 8)
    assert np.allclose(f, y[52:60])
    assert sigma == pytest.approx(0.0, abs=1e-9)  # a pure yearly pattern has no year-over-year error


def test_backtest_prefers_a_trend_aware_method_on_a_growing_series():
    y = seasonal(trend=0.8, noise=2.0)
    choice = demand.choose(y[:-8], 8)
    assert choice.method in ("sarima", "ets")
    assert choice.backtest[choice.method] < choice.backtest["snaive"]
    # And it holds on weeks the choice never saw: lower scaled error than the baseline.
    baseline, _ = demand.forecast(y[:-8], "snaive", 8)
    assert demand.mase(y[-8:], choice.forecast, y[:-8]) < demand.mase(y[-8:], baseline, y[:-8])


def test_weekly_series_buckets_points_into_whole_weeks():
    @dataclass
    class P:
        sku: str
        warehouse: str
        day: dt.date
        qty: float

    end = dt.date(2026, 11, 22)  # a Sunday
    day = dt.timedelta(days=1)
    points = [P("A", "SH", end, 3), P("A", "SH", end - 6 * day, 2), P("A", "SH", end - 7 * day, 5),
              P("A", "SH", end + day, 100)]
    series = demand.weekly_series(points, end, 4)
    assert series[("A", "SH")].tolist() == [0, 0, 5, 5]


def test_reorder_point_and_quantity():
    weekly = np.full(12, 10.0)
    plan = restock.plan(weekly, 2.0, lead_time_days=14, position=10, service_level=0.95, review_weeks=2)
    assert plan.lead_time_demand == pytest.approx(20)
    assert plan.safety_stock == pytest.approx(1.6449 * 2 * np.sqrt(2), rel=1e-3)
    assert plan.reorder_point == pytest.approx(20 + plan.safety_stock)
    assert plan.quantity == int(np.ceil(plan.reorder_point + 20 - 10))
    assert plan.days_of_cover == pytest.approx(7)
    assert restock.plan(weekly, 2.0, lead_time_days=14, position=30, service_level=0.95, review_weeks=2).quantity == 0
    # A higher service level needs more safety stock.
    assert restock.plan(weekly, 2.0, lead_time_days=14, position=10, service_level=0.99,
                        review_weeks=2).safety_stock > plan.safety_stock


def test_demand_over_fractional_lead_time():
    assert restock.demand_over(np.array([7.0, 14.0, 21.0]), 1.5) == pytest.approx(7 + 7)
    assert restock.demand_over(np.array([7.0, 14.0]), 1.0, skip=1.5) == pytest.approx(14 * 0.5 + 14 * 0.5)


@dataclass(frozen=True)
class Inv:
    id: str
    customer: str
    amount: Decimal
    paid: Decimal
    issued_on: dt.date
    due_on: dt.date
    paid_on: dt.date | None
    currency: str = "CNY"
    project: str = ""
    sales_rep: str = ""


def invoices(seed: int = 3) -> list[Inv]:
    """Two customers: one pays on time, one pays late three times in four."""
    rng = np.random.default_rng(seed)
    rows, start = [], dt.date(2025, 1, 1)
    for k in range(120):
        customer = "slow" if k % 2 else "prompt"
        issued = start + dt.timedelta(days=4 * k)
        due = issued + dt.timedelta(days=30)
        late = rng.random() < (0.75 if customer == "slow" else 0.1)
        rows.append(Inv(f"I{k}", customer, Decimal("1000"), Decimal("1000"), issued, due,
                        due + dt.timedelta(days=20 if late else -3)))
    return rows


def test_credit_features_use_only_what_was_known_then():
    rows = invoices()
    first = rows[10]
    before = credit.features(first, [r for r in rows if r.customer == first.customer], first.issued_on)
    # Invoices issued later (and their outcomes) change nothing in this row.
    same = credit.features(first, [r for r in rows if r.customer == first.customer and r.issued_on <= first.issued_on],
                           first.issued_on)
    assert np.allclose(before, same)
    assert credit.outcome(rows[1], rows[1].due_on) is None  # not known on the due date itself


def test_credit_model_ranks_the_slow_payer_higher_and_is_calibrated():
    rows = invoices()
    as_of = dt.date(2026, 6, 1)
    x, y, kept = credit.training_set(rows, as_of)
    assert len(y) > 60 and 0 < y.mean() < 1
    model = credit.train(x, y)
    probability = model.probability(x)
    slow = np.array([inv.customer == "slow" for inv in kept])
    assert probability[slow].mean() > 0.5 > probability[~slow].mean()
    assert credit.auc(y, probability) > 0.75
    assert credit.brier(y, probability) < credit.brier(y, np.full(len(y), y.mean()))
    reasons = model.reasons(x[np.argmax(probability)])
    assert reasons and reasons[0]["code"] in credit.FEATURES and reasons[0]["weight"] > 0


@dataclass(frozen=True)
class Claim:
    id: str
    requester: str
    category: str
    amount: float
    state: str = "approved"


def test_expense_score_against_category_and_requester():
    rng = np.random.default_rng(5)
    claims = [Claim(f"c{k}", f"p{k % 6}", "业务招待", float(1200 * np.exp(rng.normal(0, 0.3)))) for k in range(60)]
    claims.append(Claim("x", "p1", "业务招待", 90000.0, state="rejected"))  # rejected claims are not the norm
    stats = anomaly.fit(claims)
    assert stats["category"]["业务招待"]["median"] == pytest.approx(np.median([c.amount for c in claims[:60]]))
    usual = anomaly.assess(stats, "p1", "业务招待", 1300)
    unusual = anomaly.assess(stats, "p1", "业务招待", 5000)
    assert usual.score < 3 <= unusual.score
    assert unusual.category_ratio == pytest.approx(5000 / stats["category"]["业务招待"]["median"])
    assert {r["code"] for r in unusual.reasons} == {"category", "requester"}
    assert anomaly.assess(stats, "p1", "unknown", 5000).score == 0  # no history, no judgement
