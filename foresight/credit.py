"""Probability that an open invoice is paid late, from the customer's payment history and the
invoice itself: a logistic regression on standardised features, calibrated (scikit-learn, Platt
scaling over 5 folds). Reasons are the features pushing the probability up the most, as codes with
values: cards put them into words in the reader's language.

"Late" means paid in full after the due date, or still unpaid once the due date has passed.
Features are computed from what was known at ``as_of`` only (the issue date when training, today
when scoring), so the model never learns from the future.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FEATURES = ("late_rate", "history", "avg_days_late", "recent_late", "amount_ratio", "terms", "quarter_end",
            "open_overdue")


def outcome(inv, as_of: dt.date) -> bool | None:
    """Was ``inv`` late, as known at ``as_of``? None while it is not known yet."""
    if inv.paid_on is not None and inv.paid_on <= as_of:
        return inv.paid_on > inv.due_on
    if inv.due_on < as_of:
        return True
    return None


def issued(inv) -> dt.date:
    return inv.issued_on or inv.due_on - dt.timedelta(days=30)


def features(inv, history: Sequence, as_of: dt.date) -> np.ndarray:
    """The feature row of ``inv`` given the same customer's other invoices (``history``) at ``as_of``."""
    known = [(h, outcome(h, as_of)) for h in history if h.id != inv.id and issued(h) < as_of]
    settled = [(h, late) for h, late in known if late is not None]
    n = len(settled)
    lates = [h for h, late in settled if late]
    late_rate = (len(lates) + 1) / (n + 3)  # a prior of one late in three for a new customer
    days_late = [((h.paid_on or as_of) - h.due_on).days for h in lates]
    recent = sorted(settled, key=lambda p: p[0].due_on)[-5:]
    recent_late = (sum(late for _h, late in recent) + 0.5) / (len(recent) + 1.5)
    amounts = [float(h.amount) for h, _late in known]
    ratio = math.log(float(inv.amount) / float(np.median(amounts))) if amounts and float(inv.amount) > 0 else 0.0
    issued_on = issued(inv)
    open_overdue = sum(1 for h, _late in known if h.due_on < as_of and (h.paid_on is None or h.paid_on > as_of))
    return np.array([
        late_rate, math.log1p(n), float(np.mean(days_late)) if days_late else 0.0, recent_late, ratio,
        (inv.due_on - issued_on).days, float(issued_on.month in (3, 6, 9, 12) and issued_on.day > 20), open_overdue,
    ])


def by_customer(invoices: Sequence) -> dict[str, list]:
    grouped: dict[str, list] = defaultdict(list)
    for inv in invoices:
        grouped[inv.customer].append(inv)
    return grouped


def training_set(invoices: Sequence, as_of: dt.date) -> tuple[np.ndarray, np.ndarray, list]:
    """Every invoice issued before ``as_of`` whose outcome was known at ``as_of``, with features at its
    issue date."""
    grouped = by_customer(invoices)
    rows, labels, kept = [], [], []
    for inv in invoices:
        label = outcome(inv, as_of)
        if label is None or issued(inv) >= as_of:
            continue
        rows.append(features(inv, grouped[inv.customer], issued(inv)))
        labels.append(int(label))
        kept.append(inv)
    return np.array(rows).reshape(-1, len(FEATURES)), np.array(labels), kept


@dataclass
class CreditModel:
    calibrated: object
    explainer: object  # the plain pipeline: its coefficients give the reasons
    base_rate: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        return self.calibrated.predict_proba(x)[:, 1]

    def reasons(self, x: np.ndarray, top: int = 3) -> list[dict]:
        """The features that push this row's probability up the most, with their values."""
        scaler, model = self.explainer.named_steps["scale"], self.explainer.named_steps["model"]
        contributions = model.coef_[0] * (x - scaler.mean_) / scaler.scale_
        order = np.argsort(-contributions)
        return [{"code": FEATURES[i], "value": round(float(x[i]), 3), "weight": round(float(contributions[i]), 3)}
                for i in order[:top] if contributions[i] > 0]


def train(x: np.ndarray, y: np.ndarray) -> CreditModel:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def pipeline() -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))])

    folds = max(2, min(5, int(min(np.bincount(y, minlength=2)))))
    calibrated = CalibratedClassifierCV(pipeline(), method="sigmoid", cv=folds).fit(x, y)
    return CreditModel(calibrated, pipeline().fit(x, y), float(np.mean(y)))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))
