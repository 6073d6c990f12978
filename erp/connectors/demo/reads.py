"""The demo ERP's read capabilities (erp.connectors.base: stock, sales orders, receivables), read
from its own tables. Mixed into DemoConnector."""

from __future__ import annotations

import datetime as dt

from erp.connectors.base import RECEIVABLES, SALES_ORDERS, STOCK, Receivable, SalesOrder, StockLevel

from .models import Receivable as DemoReceivable
from .models import SalesOrder as DemoSalesOrder
from .models import Stock

READ_CAPABILITIES = frozenset({STOCK, SALES_ORDERS, RECEIVABLES})


class ReadCapabilities:
    def stock(self, skus: list[str] | None = None, warehouses: list[str] | None = None) -> list[StockLevel]:
        rows = Stock.objects.select_related("item", "warehouse").order_by("item__sku", "warehouse__code")
        if skus:
            rows = rows.filter(item__sku__in=skus)
        if warehouses:
            rows = rows.filter(warehouse__code__in=warehouses)
        return [
            StockLevel(sku=row.item.sku, name=row.item.name, warehouse=row.warehouse.code,
                       warehouse_name=row.warehouse.name, quantity=row.quantity, reserved=row.reserved,
                       safety_level=row.item.safety_level, unit=row.item.unit)
            for row in rows
        ]

    def sales_orders(self, *, since: dt.datetime | None = None) -> list[SalesOrder]:
        # The demo ERP keeps no change time on orders: ``since`` filters on creation.
        rows = DemoSalesOrder.objects.select_related("customer").order_by("number")
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        return [
            SalesOrder(id=row.number, customer=row.customer.name, status=row.status, amount=row.amount,
                       currency=row.currency, order_date=row.created_at.date(), delivery_date=row.delivery_date,
                       sales_rep=row.sales_rep, changed_at=row.created_at)
            for row in rows
        ]

    def receivables(
        self, *, customer: str = "", project: str = "", open_only: bool = True, since: dt.datetime | None = None
    ) -> list[Receivable]:
        rows = DemoReceivable.objects.select_related("customer", "project").order_by("due_date", "invoice_number")
        if customer:
            rows = rows.filter(customer__name=customer)
        if project:
            rows = rows.filter(project__name=project)
        result = [
            Receivable(id=row.invoice_number, customer=row.customer.name, amount=row.amount, paid=row.paid_amount,
                       currency=row.currency, due_date=row.due_date, project=row.project.name if row.project else "",
                       sales_rep=row.customer.sales_rep)
            for row in rows
        ]
        return [r for r in result if r.outstanding > 0] if open_only else result
