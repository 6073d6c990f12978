"""The demo ERP's purchasing capabilities: open purchase order lines, a supplier's confirmation of
a delivery date or partial quantity, and a buyer's expedite request. Each write is applied at most
once per idempotency key and refused as stale when the line moved past the version the caller saw."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from erp.connectors.base import (
    CONFIRM_DELIVERY,
    EXPEDITE_ORDER,
    ConnectorError,
    LineConfirmation,
    PurchaseOrderLine,
    StaleObject,
)

from .models import AppliedLineAction, PurchaseOrder
from .models import PurchaseOrderLine as Line


def _snapshot(line: Line) -> PurchaseOrderLine:
    return PurchaseOrderLine(
        id=str(line.pk), order=line.order.number, supplier=line.order.supplier.name,
        supplier_email=line.order.supplier.contact_email, sku=line.item.sku, name=line.item.name,
        warehouse=line.warehouse.code, warehouse_name=line.warehouse.name, qty=line.qty, unit_price=line.unit_price,
        currency=line.order.currency, promised_date=line.promised_date, confirmed_date=line.confirmed_date,
        confirmed_qty=line.confirmed_qty, confirmed_by=line.confirmed_by,
        expedite_requested=line.expedite_requested_at is not None, version=line.version,
    )


def _lines():
    return Line.objects.select_related("order__supplier", "item", "warehouse")


class PurchasingCapabilities:
    """Mixed into DemoConnector."""

    def purchase_order_lines(self, *, sku: str = "", supplier_email: str = "") -> list[PurchaseOrderLine]:
        lines = _lines().filter(order__state=PurchaseOrder.State.CONFIRMED)
        if sku:
            lines = lines.filter(item__sku=sku)
        if supplier_email:
            lines = lines.filter(order__supplier__contact_email__iexact=supplier_email)
        return [_snapshot(line) for line in lines]

    def purchase_order_line(self, line_id: str) -> PurchaseOrderLine | None:
        line = _lines().filter(pk=int(line_id) if str(line_id).isdigit() else 0).first()
        return _snapshot(line) if line else None

    def _locked(self, line_id: str, expected_version: int, key: str) -> tuple[Line | None, PurchaseOrderLine | None]:
        if not key:
            raise ConnectorError("an idempotency key is required", permanent=True)
        line = _lines().select_for_update(of=("self",)).filter(pk=int(line_id) if str(line_id).isdigit() else 0).first()
        if line is None:
            raise ConnectorError(f"no purchase order line {line_id}", permanent=True)
        if AppliedLineAction.objects.filter(idempotency_key=key).exists():
            return None, _snapshot(line)  # a repeat: the first result stands
        if line.version != expected_version:
            raise StaleObject(_snapshot(line))
        return line, None

    def confirm_delivery(self, confirmation: LineConfirmation) -> PurchaseOrderLine:
        with transaction.atomic():
            line, replayed = self._locked(confirmation.line_id, confirmation.expected_version,
                                          confirmation.idempotency_key)
            if replayed is not None:
                return replayed
            qty = confirmation.quantity
            if qty is not None and not (Decimal(0) < qty <= line.qty):
                raise ConnectorError("the confirmed quantity must be above 0 and at most the ordered quantity",
                                     permanent=True)
            line.confirmed_date = confirmation.delivery_date
            line.confirmed_qty = qty if qty is not None else line.qty
            line.confirmed_by = confirmation.actor[:200]
            line.version += 1
            line.save()
            AppliedLineAction.objects.create(idempotency_key=confirmation.idempotency_key, line=line,
                                             action=CONFIRM_DELIVERY)
            return _snapshot(line)

    def expedite_line(self, line_id: str, *, expected_version: int, actor: str, idempotency_key: str
                      ) -> PurchaseOrderLine:
        with transaction.atomic():
            line, replayed = self._locked(line_id, expected_version, idempotency_key)
            if replayed is not None:
                return replayed
            line.expedite_requested_at = timezone.now()
            line.version += 1
            line.save()
            AppliedLineAction.objects.create(idempotency_key=idempotency_key, line=line, action=EXPEDITE_ORDER)
            return _snapshot(line)
