"""Two years of the demo ERP's past: sales lines, stock moves, invoices with their payment dates and
expense claims, generated with trend, yearly seasonality, promotions and noise.

``seed_history`` is reproducible (one ``numpy`` generator from ``seed``, dates counted back from
``end``) and idempotent (it does nothing when the history is there). Everything is generated as
arrays and written with ``bulk_create``: a few hundred items over two years take seconds on SQLite.
It is kept apart from ``seed.seed_demo_erp`` on purpose: the rest of the test suite runs on the
small demo world; the demo command and the foresight tests and bench ask for the history.

The ERP's own replenishment rule is simulated while generating: below the item's safety level
(its fixed reorder point) it orders ``reorder_qty`` from the supplier, which arrives after the
supplier's lead time. Both were set from the first quarter's demand and never updated, so growing
and seasonal items run out now and then: the stock moves, today's stock and what is on order follow
from that rule.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from .models import (
    Customer,
    DocumentState,
    ExpenseClaim,
    Item,
    Receivable,
    SalesLine,
    Stock,
    StockMove,
    Supplier,
    Warehouse,
)

HISTORY_SKU_PREFIX = "SKU-7"  # SKU-7000 … : the generated catalogue (the hand-written items are SKU-1xx…5xx)
WEEKS = 104
SUPPLIER_LEAD_DAYS = {"S001": 14, "S002": 7, "S003": 35}


@dataclass(frozen=True)
class Group:
    code: str
    names: tuple[tuple[str, str], ...]  # (Chinese, English) stems
    unit: str
    supplier: str
    share: float
    base: tuple[float, float]  # weekly demand in SH at the start
    amplitude: tuple[float, float]  # yearly seasonality, relative
    peak: float  # fraction of the year where demand peaks
    trend: tuple[float, float]  # relative change per year
    promotions: bool
    consumption: bool  # used in production (stock moves), not sold (sales lines)
    price: tuple[float, float]


GROUPS = (
    Group("bearings", (("深沟球轴承", "Deep groove ball bearing"), ("圆锥滚子轴承", "Tapered roller bearing"),
                       ("角接触球轴承", "Angular contact ball bearing")),
          "个", "S003", 0.25, (30, 150), (0.10, 0.35), 0.20, (-0.10, 0.30), False, False, (15, 180)),
    Group("fasteners", (("内六角螺栓", "Hex socket bolt"), ("法兰螺母", "Flange nut"), ("弹簧垫圈", "Spring washer")),
          "盒", "S002", 0.20, (80, 400), (0.00, 0.10), 0.50, (-0.05, 0.10), False, True, (8, 60)),
    Group("motion", (("伺服电机", "Servo motor"), ("步进电机", "Stepper motor"), ("伺服驱动器", "Servo drive")),
          "台", "S001", 0.15, (2, 12), (0.05, 0.20), 0.80, (0.10, 0.60), True, False, (1200, 6000)),
    Group("electrical", (("接触器", "Contactor"), ("断路器", "Circuit breaker"), ("中间继电器", "Relay")),
          "个", "S001", 0.25, (10, 60), (0.30, 0.60), 0.45, (-0.20, 0.30), True, False, (40, 900)),
    Group("spares", (("密封圈", "Seal ring"), ("同步带", "Timing belt"), ("编码器线缆", "Encoder cable")),
          "件", "S002", 0.15, (0.3, 2.5), (0.00, 0.15), 0.30, (-0.20, 0.20), False, False, (50, 800)),
)

CUSTOMER_STEMS = ("宏达", "恒信", "金桥", "远航", "启明", "新锐", "博远", "天成", "瑞丰", "华宇", "嘉禾", "正泰",
                  "鼎盛", "永安", "盛世", "联创", "智联", "昌隆", "海川", "德力")
CUSTOMER_TRADES = (("机械", "Machinery"), ("自动化", "Automation"), ("电气", "Electric"), ("制造", "Manufacturing"))
CATEGORIES = {  # category -> usual amount (CNY)
    "差旅费": 2200.0, "市场推广": 3000.0, "业务招待": 1200.0, "办公用品": 400.0, "培训费": 2500.0, "交通费": 150.0,
}
DEMO_REQUESTERS = ("chen.qi", "zhang.san", "li.si", "zhao.liu", "wang.wu")


def history_exists() -> bool:
    return Item.objects.filter(sku__startswith=HISTORY_SKU_PREFIX).exists()


def seed_history(*, items: int = 240, customers: int = 40, requesters: int = 25, seed: int = 11,
                 end: dt.date | None = None) -> dict[str, int]:
    """Generate the history once (no-op when present). Returns row counts."""
    if history_exists():
        return {}
    end = end or timezone.localdate() - dt.timedelta(days=1)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    with transaction.atomic():
        for code, days in SUPPLIER_LEAD_DAYS.items():
            Supplier.objects.filter(code=code).update(lead_time_days=days)
        counts.update(_stock_history(rng, items, end))
        counts.update(_invoices(rng, customers, end))
        # The claims draw from a stream of their own: how many draws the stock history takes depends on
        # the date (``end``), and the claims' statistics (what counts as unusual) must not change with it.
        counts.update(_expense_claims(np.random.default_rng([seed, 3]), requesters, end))
    return counts


# --- items, sales lines, stock moves --------------------------------------------------------------


def _stock_history(rng: np.random.Generator, n_items: int, end: dt.date) -> dict[str, int]:
    suppliers = {s.code: s for s in Supplier.objects.all()}
    warehouses = {w.code: w for w in Warehouse.objects.all()}
    customers = list(Customer.objects.order_by("code"))
    start = end - dt.timedelta(days=7 * WEEKS - 1)
    week_starts = [start + dt.timedelta(days=7 * w) for w in range(WEEKS)]
    year_fraction = np.array([(d - dt.date(d.year, 1, 1)).days / 365.0 for d in week_starts])
    t = np.arange(WEEKS) / 52.0
    # Promotion weeks every item of a promoting group shares: 618 and Double 11.
    festival = np.array([any(d <= dt.date(d.year, m, day) < d + dt.timedelta(days=7) for m, day in ((6, 18), (11, 11)))
                         for d in week_starts])

    shares = np.array([g.share for g in GROUPS])
    group_index = np.repeat(np.arange(len(GROUPS)), np.round(shares / shares.sum() * n_items).astype(int))[:n_items]
    group_index = np.pad(group_index, (0, n_items - len(group_index)), mode="edge")
    item_rows: list[Item] = []
    series: list[tuple[int, str, float]] = []  # (item index, warehouse code, scale)
    params: list[dict[str, Any]] = []
    for i, g_idx in enumerate(group_index):
        group = GROUPS[g_idx]
        stem_zh, stem_en = group.names[i % len(group.names)]
        model = f"{100 + (i * 37) % 900}"
        price = float(np.exp(rng.uniform(math.log(group.price[0]), math.log(group.price[1]))))
        item_rows.append(Item(
            sku=f"{HISTORY_SKU_PREFIX}{i:03d}", name=f"{stem_zh} {model}", name_en=f"{stem_en} {model}",
            unit=group.unit, unit_price=Decimal(f"{price:.2f}"), supplier=suppliers[group.supplier], group=group.code,
        ))
        params.append({
            "base": rng.uniform(*group.base), "amp": rng.uniform(*group.amplitude),
            "peak": group.peak + rng.normal(0, 0.04), "trend": rng.uniform(*group.trend),
            "promo": group.promotions and rng.random() < 0.7,
        })
        series.append((i, "SH", 1.0))
        if rng.random() < 0.5:
            series.append((i, "SZ", rng.uniform(0.4, 0.8)))
    Item.objects.bulk_create(item_rows)
    items = {it.sku: it for it in Item.objects.filter(sku__startswith=HISTORY_SKU_PREFIX)}
    item_list = [items[row.sku] for row in item_rows]

    n = len(series)
    lam = np.empty((n, WEEKS))
    promo = np.zeros((n, WEEKS), dtype=bool)
    for s, (i, _wh, scale) in enumerate(series):
        p = params[i]
        level = p["base"] * scale * np.clip(1 + p["trend"] * t, 0.2, None)
        season = 1 + p["amp"] * np.cos(2 * np.pi * (year_fraction - p["peak"]))
        lam[s] = level * season
        if p["promo"]:
            own = rng.random(WEEKS) < 2 / 52  # about two promotions of its own a year
            promo[s] = festival | own
    lam = lam * np.where(promo, rng.uniform(1.5, 2.5, size=lam.shape), 1.0)
    # Negative binomial noise (a gamma-mixed Poisson): more spread than Poisson, as real demand has.
    demand = rng.poisson(lam * rng.gamma(8.0, 1 / 8.0, size=lam.shape)).astype(np.int64)

    # The ERP's rule, one per item (set from its SH demand in the first quarter), never revisited.
    lead_weeks = np.array([math.ceil(SUPPLIER_LEAD_DAYS[GROUPS[group_index[i]].supplier] / 7) for i, _w, _s in series])
    first_quarter = demand[:, :13].mean(axis=1)
    sh_series = {i: s for s, (i, wh, _sc) in enumerate(series) if wh == "SH"}
    rule_of = np.array([sh_series[i] for i, _w, _sc in series])
    reorder_point = np.ceil(first_quarter * (lead_weeks + 1))[rule_of]
    reorder_qty = np.maximum(np.ceil(first_quarter * 4), 1)[rule_of]
    on_hand = reorder_point + np.ceil(reorder_qty / 2)
    pipeline = np.zeros((n, WEEKS + 12))
    shipped = np.zeros((n, WEEKS), dtype=np.int64)
    received = np.zeros((n, WEEKS), dtype=np.int64)
    for w in range(WEEKS):
        on_hand = on_hand + pipeline[:, w]
        received[:, w] = pipeline[:, w]
        shipped[:, w] = np.minimum(on_hand, demand[:, w])
        on_hand = on_hand - shipped[:, w]
        position = on_hand + pipeline[:, w + 1:].sum(axis=1)
        order = position <= reorder_point
        pipeline[np.nonzero(order)[0], w + lead_weeks[order]] += reorder_qty[order]
    on_order = pipeline[:, WEEKS:].sum(axis=1)

    for s, (i, wh, _scale) in enumerate(series):
        if wh == "SH":  # the item's rule lives on the item; the SH series set it
            item_list[i].safety_level = Decimal(int(reorder_point[s]))
            item_list[i].reorder_qty = Decimal(int(reorder_qty[s]))
    Item.objects.bulk_update(item_list, ["safety_level", "reorder_qty"])
    Stock.objects.bulk_create(
        Stock(item=item_list[i], warehouse=warehouses[wh], quantity=Decimal(int(on_hand[s])),
              on_order=Decimal(int(on_order[s])))
        for s, (i, wh, _scale) in enumerate(series)
    )

    # Sales lines: each week's demand of a sold item split into one to three lines on random days.
    sold = np.array([not GROUPS[group_index[i]].consumption for i, _w, _sc in series])
    s_idx, w_idx = np.nonzero(demand * sold[:, None])
    totals = demand[s_idx, w_idx]
    parts = np.minimum(rng.integers(1, 4, size=len(totals)), totals)
    weights = rng.random((len(totals), 3)) * (np.arange(3)[None, :] < parts[:, None])
    qty = np.floor(totals[:, None] * weights / weights.sum(axis=1, keepdims=True)).astype(np.int64)
    qty[:, 0] += totals - qty.sum(axis=1)  # what rounding left over goes to the first line
    line_s, line_j = np.nonzero(qty)
    line_w = w_idx[line_s]
    series_s = s_idx[line_s]
    line_days = (np.datetime64(start) + line_w * 7 + rng.integers(0, 7, size=len(line_s))).tolist()
    buyers = rng.integers(0, len(customers), size=len(line_s))
    item_ids = np.array([item_list[i].pk for i, _w, _sc in series])
    warehouse_ids = np.array([warehouses[wh].pk for _i, wh, _sc in series])
    prices = np.array([str(item_list[i].unit_price) for i, _w, _sc in series], dtype=object)
    customer_ids = np.array([c.pk for c in customers])
    line_rows = zip(
        (f"SO-H{k:06d}" for k in range(1, len(line_s) + 1)), line_days, customer_ids[buyers].tolist(),
        item_ids[series_s].tolist(), warehouse_ids[series_s].tolist(), qty[line_s, line_j].tolist(),
        prices[series_s].tolist(), promo[series_s, line_w].tolist(), strict=True,
    )
    sales_lines = _insert(SalesLine, ["order_number", "day", "customer_id", "item_id", "warehouse_id", "qty",
                                      "unit_price", "promotion"], line_rows)

    # Stock moves: receipts of the ERP's orders, and each week's deliveries or consumption.
    consumption = ~sold
    moves = []
    for kind, amounts, sign, day_offset in ((StockMove.Kind.RECEIPT, received, 1, 0), (None, shipped, -1, 6)):
        m_s, m_w = np.nonzero(amounts)
        move_days = (np.datetime64(start) + m_w * 7 + day_offset).tolist()
        kinds = ([kind] * len(m_s) if kind else
                 np.where(consumption[m_s], StockMove.Kind.CONSUMPTION, StockMove.Kind.DELIVERY).tolist())
        refs = [f"PO-H{a:04d}-{b:03d}" for a, b in zip(m_s, m_w, strict=True)] if kind else [""] * len(m_s)
        moves.append(zip(move_days, item_ids[m_s].tolist(), warehouse_ids[m_s].tolist(), kinds,
                         (sign * amounts[m_s, m_w]).tolist(), refs, strict=True))
    stock_moves = sum(_insert(StockMove, ["day", "item_id", "warehouse_id", "kind", "qty", "reference"], rows)
                      for rows in moves)
    return {"items": len(item_list), "series": n, "sales_lines": sales_lines, "stock_moves": stock_moves}


def _insert(model: type, columns: list[str], rows: Any) -> int:
    """Plain multi-row INSERTs: for 10⁵ rows the ORM's per-object work costs more than the database."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    rows = list(rows)
    per_statement = 500
    with connection.cursor() as cursor:
        for first in range(0, len(rows), per_statement):
            chunk = rows[first:first + per_statement]
            values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {values}",  # noqa: S608 - names from _meta
                           [v for row in chunk for v in row])
    return len(rows)


# --- invoices and payments ----------------------------------------------------------------------------


def _invoices(rng: np.random.Generator, n_customers: int, end: dt.date) -> dict[str, int]:
    new = []
    for k in range(n_customers):
        stem = CUSTOMER_STEMS[k % len(CUSTOMER_STEMS)]
        trade_zh, trade_en = CUSTOMER_TRADES[(k // len(CUSTOMER_STEMS) + k) % len(CUSTOMER_TRADES)]
        new.append(Customer(code=f"C{100 + k}", name=f"{stem}{trade_zh}", name_en=f"{stem} {trade_en}",
                            sales_rep="chen.qi" if rng.random() < 0.8 else ""))
    existing_names = set(Customer.objects.values_list("name", flat=True))
    Customer.objects.bulk_create([c for c in new if c.name not in existing_names])
    customers = list(Customer.objects.order_by("code"))

    start = end - dt.timedelta(days=7 * WEEKS - 1)
    days = (end - start).days + 1
    rows: list[Receivable] = []
    sequence: dict[int, int] = {}
    for customer in customers:
        # How reliably this customer pays (higher: later), how big its invoices are, whether it got worse lately.
        reliability = rng.normal(0, 1)
        worsening = rng.random() < 0.2
        if customer.code == "C001":  # 华东电子: the demo's customer whose payments have been slipping
            reliability, worsening = 0.8, True
        scale = float(np.exp(rng.uniform(math.log(8000), math.log(120000))))
        count = rng.poisson(2.5 * 24)
        issued = np.sort(rng.integers(0, days, size=count))
        amounts = np.round(scale * np.exp(rng.normal(0, 0.5, size=count)), -2) + 100
        terms = rng.choice([30, 45, 60], size=count, p=[0.5, 0.3, 0.2])
        for offset, amount, term in zip(issued, amounts, terms, strict=True):
            issued_on = start + dt.timedelta(days=int(offset))
            due_on = issued_on + dt.timedelta(days=int(term))
            recent = (end - issued_on).days < 240
            quarter_end = issued_on.month in (3, 6, 9, 12) and issued_on.day > 20
            logit = (-1.0 + 1.3 * reliability + 0.6 * math.log(amount / scale) + 0.5 * quarter_end
                     + 0.3 * (term == 30) + (1.5 if worsening and recent else 0.0))
            late = rng.random() < 1 / (1 + math.exp(-logit))
            days_late = int(rng.lognormal(2.6, 0.7)) + 1 if late else -int(rng.integers(0, 10))
            paid_on = due_on + dt.timedelta(days=days_late)
            paid = paid_on <= end
            year = issued_on.year
            sequence[year] = sequence.get(year, 0) + 1
            rows.append(Receivable(
                invoice_number=f"INV-{year}-H{sequence[year]:04d}", customer=customer, amount=Decimal(f"{amount:.2f}"),
                paid_amount=Decimal(f"{amount:.2f}") if paid else Decimal("0"), currency="CNY",
                issued_on=issued_on, due_date=due_on, paid_on=paid_on if paid else None,
            ))
    Receivable.objects.bulk_create(rows, batch_size=5000)
    return {"customers": len(customers), "invoices": len(rows)}


# --- expense claims ---------------------------------------------------------------------------------


def _expense_claims(rng: np.random.Generator, n_requesters: int, end: dt.date) -> dict[str, int]:
    logins = list(DEMO_REQUESTERS) + [f"staff.{k:02d}" for k in range(1, n_requesters + 1)]
    names = list(CATEGORIES)
    start = end - dt.timedelta(days=7 * WEEKS - 1)
    days = (end - start).days + 1
    tz = timezone.get_current_timezone()
    rows: list[ExpenseClaim] = []
    sequence: dict[int, int] = {}
    for login in logins:
        level = float(np.exp(rng.normal(0, 0.3)))  # some people travel further, eat better
        mine = list(rng.choice(names, size=int(rng.integers(2, 5)), replace=False))
        if login == "chen.qi":
            mine = list(dict.fromkeys(["差旅费", "业务招待", "市场推广", *mine]))
        count = rng.poisson(1.5 * 24)
        for offset in np.sort(rng.integers(0, days, size=count)):
            category = mine[int(rng.integers(0, len(mine)))]
            unusual = rng.random() < 0.015
            amount = CATEGORIES[category] * level * float(np.exp(rng.normal(0, 0.4)))
            amount *= rng.uniform(3, 6) if unusual else 1
            created = dt.datetime.combine(start + dt.timedelta(days=int(offset)), dt.time(10), tzinfo=tz)
            rejected = rng.random() < (0.5 if unusual else 0.03)
            year = created.year
            sequence[year] = sequence.get(year, 0) + 1
            rows.append(ExpenseClaim(
                number=f"EC-{year}-H{sequence[year]:04d}", title=f"{category}报销", requester=login,
                approvers=["wang.wu"], amount=Decimal(f"{amount:.2f}"), currency="CNY", category=category,
                state=DocumentState.REJECTED if rejected else DocumentState.APPROVED, decided_by="wang.wu",
                decided_at=created + dt.timedelta(days=int(rng.integers(1, 4))), created_at=created,
            ))
    ExpenseClaim.objects.bulk_create(rows, batch_size=5000)
    return {"expense_claims": len(rows)}
