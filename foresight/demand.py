"""Weekly demand forecasts per item and warehouse: three candidates, chosen per series by backtest.

- ``snaive``: the same week last year (the baseline every other number is compared with);
- ``ets``: exponential smoothing with a damped additive trend (statsmodels Holt-Winters);
- ``sarima``: SARIMA(1,0,0)(0,1,0)₅₂ with drift — an AR(1) on the year-over-year difference,
  fitted by conditional least squares (statsmodels AutoReg), which carries last year's shape and
  this year's growth.

Fits are cheap on purpose (a few ms to ~30 ms each), so a few hundred series with rolling origins
finish in minutes on two cores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

SEASON = 52
METHODS = ("snaive", "ets", "sarima")


def weekly_series(points: Iterable, end: dt.date, weeks: int) -> dict[tuple[str, str], np.ndarray]:
    """Demand per (sku, warehouse) in ``weeks`` whole weeks ending on ``end`` (oldest first)."""
    start = end - dt.timedelta(days=7 * weeks - 1)
    series: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(weeks))
    for p in points:
        if start <= p.day <= end:
            series[(p.sku, p.warehouse)][(p.day - start).days // 7] += p.qty
    return dict(series)


def fingerprint(y: np.ndarray) -> str:
    return hashlib.sha256(np.round(y, 3).tobytes()).hexdigest()


def _snaive(y: np.ndarray, h: int) -> np.ndarray:
    if len(y) >= SEASON:
        return np.array([y[len(y) - SEASON + (k % SEASON)] for k in range(h)], dtype=float)
    return np.full(h, y[-4:].mean() if len(y) else 0.0)


def _ets(y: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    if len(y) < 10 or not y.any():
        return np.full(h, y.mean() if len(y) else 0.0), y - (y.mean() if len(y) else 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(y, trend="add", damped_trend=True,
                                   initialization_method="heuristic").fit(use_brute=False, method="least_squares")
    return np.asarray(fit.forecast(h)), np.asarray(fit.resid)


def _sarima(y: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray] | None:
    from statsmodels.tsa.ar_model import AutoReg

    if len(y) < SEASON + 12:
        return None
    z = y[SEASON:] - y[:-SEASON]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = AutoReg(z, lags=1, trend="c").fit()
        z_hat = np.asarray(fit.predict(start=len(z), end=len(z) + h - 1))
    return _snaive(y, h) + z_hat, np.asarray(fit.resid)


def forecast(y: np.ndarray, method: str, h: int) -> tuple[np.ndarray, float] | None:
    """``h`` weeks ahead (never below zero) and the one-week error's standard deviation."""
    if method == "snaive":
        f = _snaive(y, h)
        resid = y[SEASON:] - y[:-SEASON] if len(y) > SEASON else np.diff(y)
    elif method == "ets":
        f, resid = _ets(y, h)
    elif method == "sarima":
        out = _sarima(y, h)
        if out is None:
            return None
        f, resid = out
    else:
        raise ValueError(f"unknown method {method!r}")
    sigma = float(np.std(resid)) if len(resid) > 1 else float(np.std(y))
    return np.clip(f, 0, None), sigma


@dataclass
class Choice:
    method: str
    forecast: np.ndarray
    sigma: float
    backtest: dict[str, float] = field(default_factory=dict)  # mean absolute error per method


def choose(y: np.ndarray, h: int, *, origins: int = 2, step: int = 4) -> Choice:
    """Backtest every method on the last ``origins`` × ``step`` weeks, then forecast ``h`` weeks with the
    one that erred least (MAE over ``step``-week horizons). Ties keep the simpler method (list order)."""
    errors: dict[str, list[float]] = {m: [] for m in METHODS}
    for k in range(origins, 0, -1):
        cut = len(y) - k * step
        if cut < 12:
            continue
        train, actual = y[:cut], y[cut:cut + step]
        for method in METHODS:
            out = forecast(train, method, len(actual))
            if out is not None:
                errors[method].append(float(np.mean(np.abs(out[0] - actual))))
    scores = {m: float(np.mean(e)) for m, e in errors.items() if e}
    best = min(scores, key=lambda m: (scores[m], METHODS.index(m))) if scores else "snaive"
    out = forecast(y, best, h)
    if out is None:  # the chosen method needs more history than the full series has (cannot happen)
        best, out = "snaive", forecast(y, "snaive", h)
    return Choice(best, out[0], out[1], scores)


def mase(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, m: int = SEASON) -> float:
    """Mean absolute scaled error: the error relative to the in-sample seasonal-naive error."""
    scale = np.mean(np.abs(train[m:] - train[:-m])) if len(train) > m else np.mean(np.abs(np.diff(train)))
    if not scale or math.isnan(scale):
        return float("nan")
    return float(np.mean(np.abs(actual - predicted)) / scale)
