"""Backtest of foresight on the demo ERP's seeded history, printed as a table.

    .venv/bin/python bench/foresight.py [--items 240] [--origins 6] [--seed 11]

1. Demand: a rolling-origin backtest. At each origin (every 4 weeks over the last ``origins`` × 4
   weeks) the per-series choice runs exactly as in the nightly job, on the weeks before the origin
   only, and forecasts the next 4 weeks. MASE (scaled by the in-sample seasonal-naive error) of the
   chosen forecast and of the seasonal-naive baseline, per item group.
2. Restock replay over the same weeks: each series starts with the stock it really had, then the
   ERP's fixed rule (reorder point = the item's safety level, fixed quantity) and foresight's
   reorder point (forecast over the lead time + safety stock at the service level) each run on the
   real demand. Stock-out weeks (demand above what is on hand), fill rate and average stock value.
3. Late payment: trained on what was known 180 days before the end of the history, tested on the
   invoices issued since whose outcome is known: AUC and Brier score, beside the customer's own past
   late rate as a baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import setup_django  # noqa: E402

STEP = 4  # weeks between origins, and the scored horizon


def table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([line.format(*headers), line.format(*["-" * w for w in widths])]
                     + [line.format(*map(str, r)) for r in rows])


def replay(demand: np.ndarray, start_on_hand: float, lead_weeks: int, policy) -> tuple[int, float, float]:
    """Weeks with a stock-out, units short, average units on hand, running ``policy(week, position)``."""
    on_hand, pipeline = start_on_hand, defaultdict(float)
    outs, short, held = 0, 0.0, 0.0
    for w, d in enumerate(demand):
        on_hand += pipeline.pop(w, 0.0)
        if d > on_hand:
            outs, short = outs + 1, short + d - on_hand
        on_hand = max(on_hand - d, 0.0)
        held += on_hand
        order = policy(w, on_hand + sum(pipeline.values()))
        if order > 0:
            pipeline[w + lead_weeks] += order
    return outs, short, held / len(demand)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=240)
    parser.add_argument("--origins", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.conf import settings
        from django.utils import timezone

        from erp.connectors.demo.connector import DemoConnector
        from erp.connectors.demo.history import WEEKS, seed_history
        from erp.connectors.demo.models import Stock, StockMove
        from erp.connectors.demo.seed import seed_demo_erp
        from foresight import credit, demand, restock

        seed_demo_erp(emit=False)
        t0 = time.monotonic()
        counts = seed_history(items=args.items, seed=args.seed)
        seed_seconds = time.monotonic() - t0
        end = timezone.localdate() - dt.timedelta(days=1)  # the history's last day
        erp = DemoConnector()
        series = demand.weekly_series(erp.demand_history(), end, WEEKS)
        positions = {(p.sku, p.warehouse): p for p in erp.replenishment()}
        moves = demand.weekly_series(
            [type("M", (), {"sku": sku, "warehouse": wh, "day": day, "qty": float(qty)})
             for sku, wh, day, qty in StockMove.objects.values_list("item__sku", "warehouse__code", "day", "qty")],
            end, WEEKS)
        final = {(s.item.sku, s.warehouse.code): float(s.quantity)
                 for s in Stock.objects.select_related("item", "warehouse")}

        origins = [WEEKS - k * STEP for k in range(args.origins, 0, -1)]
        first = origins[0]
        mase = defaultdict(lambda: {"foresight": [], "snaive": []})
        methods: dict[str, int] = defaultdict(int)
        sim = defaultdict(lambda: defaultdict(float))
        t0 = time.monotonic()
        for key, y in sorted(series.items()):
            pos = positions.get(key)
            if pos is None:
                continue
            group = pos.group or "other"
            plans = {}
            for o in origins:
                train, actual = y[:o], y[o:o + STEP]
                choice = demand.choose(train, 12)
                methods[choice.method] += 1
                baseline, _ = demand.forecast(train, "snaive", STEP)
                mase[group]["foresight"].append(demand.mase(actual, choice.forecast[:STEP], train))
                mase[group]["snaive"].append(demand.mase(actual, baseline, train))
                plans[o] = choice
            lead = max(1, math.ceil(pos.lead_time_days / 7))
            start = final[key] - float(moves.get(key, np.zeros(WEEKS))[first:].sum())
            erp_rop, erp_qty = float(pos.reorder_point), float(pos.reorder_qty)

            def fixed(_w: int, position: float, rop: float = erp_rop, qty: float = erp_qty) -> float:
                return qty if position <= rop else 0.0

            def foreseen(w: int, position: float, plans: dict = plans, lead_days: int = pos.lead_time_days) -> float:
                # The forecast made at the last origin, from the week it is now.
                c = plans[first + (w // STEP) * STEP]
                return float(restock.plan(c.forecast[w % STEP:], c.sigma, lead_time_days=lead_days, position=position,
                                          service_level=settings.FORESIGHT_SERVICE_LEVEL,
                                          review_weeks=settings.FORESIGHT_REVIEW_WEEKS).quantity)

            real = y[first:]
            price = float(pos.unit_price)
            for name, policy in (("erp", fixed), ("foresight", foreseen)):
                outs, short, held = replay(real, max(start, 0.0), lead, policy)
                sim[group][f"{name}_outs"] += outs
                sim[group][f"{name}_short"] += short
                sim[group][f"{name}_value"] += held * price
            sim[group]["demand"] += float(real.sum())
            sim[group]["series"] += 1
        forecast_seconds = time.monotonic() - t0

        rows, totals = [], defaultdict(float)
        for group in sorted(mase):
            f, b = np.array(mase[group]["foresight"]), np.array(mase[group]["snaive"])
            ok = ~(np.isnan(f) | np.isnan(b))
            s = sim[group]
            rows.append([group, int(s["series"]), f"{np.mean(f[ok]):.3f}", f"{np.mean(b[ok]):.3f}",
                         f"{np.mean(f[ok] < b[ok]):.0%}", int(s["erp_outs"]), int(s["foresight_outs"]),
                         int(s["erp_outs"] - s["foresight_outs"]), f"{1 - s['erp_short'] / s['demand']:.1%}",
                         f"{1 - s['foresight_short'] / s['demand']:.1%}", f"{s['erp_value'] / 1000:,.0f}",
                         f"{s['foresight_value'] / 1000:,.0f}"])
            for k, v in s.items():
                totals[k] += v
            totals["f"] += float(np.sum(f[ok]))
            totals["b"] += float(np.sum(b[ok]))
            totals["n"] += int(ok.sum())
            totals["better"] += int(np.sum(f[ok] < b[ok]))
        rows.append(["all", int(totals["series"]), f"{totals['f'] / totals['n']:.3f}",
                     f"{totals['b'] / totals['n']:.3f}",
                     f"{totals['better'] / totals['n']:.0%}", int(totals["erp_outs"]), int(totals["foresight_outs"]),
                     int(totals["erp_outs"] - totals["foresight_outs"]),
                     f"{1 - totals['erp_short'] / totals['demand']:.1%}",
                     f"{1 - totals['foresight_short'] / totals['demand']:.1%}",
                     f"{totals['erp_value'] / 1000:,.0f}", f"{totals['foresight_value'] / 1000:,.0f}"])

        t0 = time.monotonic()
        invoices = erp.invoice_history()
        cutoff = end - dt.timedelta(days=180)
        x_train, y_train, _ = credit.training_set(invoices, cutoff)
        x_all, y_all, kept = credit.training_set(invoices, end)
        test = np.array([credit.issued(i) >= cutoff for i in kept])
        model = credit.train(x_train, y_train)
        p = model.probability(x_all[test])
        baseline = x_all[test][:, credit.FEATURES.index("late_rate")]
        y_test = y_all[test]
        credit_seconds = time.monotonic() - t0

    print(f"Foresight backtest — demo ERP history: {counts['items']} items, {counts['series']} item×warehouse "
          f"series, {WEEKS} weeks, seed {args.seed}")
    print(f"Demand: {args.origins} rolling origins every {STEP} weeks, {STEP}-week horizon; restock replay over the "
          f"last {args.origins * STEP} weeks at service level {settings.FORESIGHT_SERVICE_LEVEL:.0%}.")
    print()
    print(table(["group", "series", "MASE foresight", "MASE s-naive", "better", "stock-out wks ERP",
                 "stock-out wks foresight", "avoided", "fill ERP", "fill foresight", "avg stock k¥ ERP",
                 "avg stock k¥ foresight"], rows))
    print(f"methods chosen: {dict(sorted(methods.items()))}")
    print()
    print(table(["late payment (held-out)", "invoices", "late share", "AUC", "Brier"], [
        ["model (calibrated logistic)", len(y_test), f"{y_test.mean():.1%}", f"{credit.auc(y_test, p):.3f}",
         f"{credit.brier(y_test, p):.3f}"],
        ["customer's past late rate", len(y_test), f"{y_test.mean():.1%}", f"{credit.auc(y_test, baseline):.3f}",
         f"{credit.brier(y_test, baseline):.3f}"],
        ["constant (training late share)", len(y_test), f"{y_test.mean():.1%}", "0.500",
         f"{credit.brier(y_test, np.full(len(y_test), y_train.mean())):.3f}"],
    ]))
    print(f"trained on {len(y_train)} invoices known by {cutoff}, tested on those issued since "
          "(features at issue date)")
    print()
    print(f"seconds: seeding {seed_seconds:.1f}, demand backtest + replay {forecast_seconds:.1f}, "
          f"late payment {credit_seconds:.1f}, total {time.monotonic() - started:.1f}")


if __name__ == "__main__":
    main()
