"""The demo connector's read capabilities (stock, sales orders, receivables) over its seeded tables."""

from __future__ import annotations

import pytest

from erp.connectors.base import CHANGES, RECEIVABLES, SALES_ORDERS, STOCK, supports

from .connector import DemoConnector
from .models import Receivable, SalesOrder, Stock
from .seed import seed_demo_erp

pytestmark = pytest.mark.django_db


def test_reads_match_the_demo_tables() -> None:
    seed_demo_erp(emit=False)
    erp = DemoConnector()
    assert all(supports(erp, c) for c in (STOCK, SALES_ORDERS, RECEIVABLES)) and not supports(erp, CHANGES)

    levels = erp.stock()
    assert len(levels) == Stock.objects.count() > 0
    row = Stock.objects.select_related("item", "warehouse").first()
    [level] = erp.stock(skus=[row.item.sku], warehouses=[row.warehouse.code])
    assert (level.quantity, level.reserved, level.safety_level) == (row.quantity, row.reserved, row.item.safety_level)

    orders = {o.id: o for o in erp.sales_orders()}
    assert orders["SO-2026-0815"].status == "shipped" and len(orders) == SalesOrder.objects.count()

    everything = erp.receivables(open_only=False)
    assert len(everything) == Receivable.objects.count()
    open_ones = erp.receivables()
    assert open_ones and all(r.outstanding > 0 for r in open_ones)
    some = open_ones[0]
    assert all(r.customer == some.customer for r in erp.receivables(customer=some.customer))
    if some.project:
        assert some.id in {r.id for r in erp.receivables(project=some.project)}
