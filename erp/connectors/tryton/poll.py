"""Change detection for Tryton: poll ``create_date``/``write_date`` since a cursor, emit CloudEvents.

Core Tryton sends no webhooks. Each poll reads what changed since ``cursor - OVERLAP`` (a transaction
that committed late can carry an older timestamp), turns it into the same signed CloudEvents an ERP
would POST, and hands them to ``erp.intake.receive`` — no side door. The webhook-id is derived from
the record, its state and its write time, so a change seen twice (overlap, a restart before the
cursor was saved) is a duplicate the intake ignores: each change is emitted once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from erp.intake import IntakeError, receive
from erp.models import ConnectorSettings, InboundEvent
from erp.payload import money, quantity
from erp.signing import make_cloudevent, sign

from .connector import REQUISITION, SNAPSHOT_STATES, TrytonConnector, changed_since, related, utc

logger = logging.getLogger(__name__)

OVERLAP = dt.timedelta(seconds=60)
REQUESTED = "erp.approval.requested"
DECIDED = "erp.approval.decided"
STOCK = "erp.stock.changed"
ORDER = "erp.order.status_changed"
RECEIVABLE = "erp.receivable.changed"


@dataclass
class PollResult:
    accepted: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    cursor: dt.datetime | None = None


def _stamp(row: dict[str, Any]) -> dt.datetime:
    return utc(row.get("write_date") or row.get("create_date"))  # type: ignore[return-value]


class Poller:
    def __init__(self, settings: ConnectorSettings, connector: TrytonConnector | None = None) -> None:
        self.settings = settings
        self.slug = settings.connector.slug
        self.connector = connector or TrytonConnector(settings)
        self.source = f"urn:erp:tryton:{settings.database}"
        self.result = PollResult()

    def webhook_id(self, change_id: str) -> str:
        return f"tryton:{self.slug}:{change_id}"[:200]

    def seen(self, change_id: str) -> bool:
        """Already accepted by the intake (the overlap window reads it again): skip the extra reads."""
        known = InboundEvent.objects.filter(connector=self.settings.connector, webhook_id=self.webhook_id(change_id))
        if known.exists():
            self.result.duplicates += 1
            return True
        return False

    def send(self, event_type: str, data: dict[str, Any], *, subject: str, change_id: str) -> None:
        """Sign with the connector's secret and deliver through the intake; a refusal is logged, not fatal."""
        import json

        envelope = make_cloudevent(event_type, self.source, data, subject)
        body = json.dumps(envelope, ensure_ascii=False).encode()
        headers = sign(self.settings.connector.webhook_secret, body, webhook_id=self.webhook_id(change_id))
        try:
            outcome = receive(self.slug, headers, body)
        except IntakeError as exc:
            # A permanent refusal (e.g. a decision on a document the portal never saw): retrying the
            # same data cannot help, so it is recorded and the cursor moves on.
            logger.warning("tryton poll: %s %s refused: %s", event_type, subject, exc)
            self.result.refused.append(f"{event_type} {subject}: {exc.detail or exc.title}")
            return
        if outcome.duplicate:
            self.result.duplicates += 1
        else:
            self.result.accepted += 1

    def run(self) -> PollResult:
        cursor = self.settings.cursor
        since = cursor - OVERLAP if cursor else None
        newest = cursor
        if self.settings.emits(REQUESTED) or self.settings.emits(DECIDED):
            for row in self.connector.requisitions(changed_since(since)):
                self.requisition(row)
                newest = max(filter(None, [newest, _stamp(row)]))
        if self.settings.emits(STOCK):
            newest = max(filter(None, [newest, self.stock(since)]), default=None)
        if self.settings.emits(ORDER):
            for order in self.connector.sales_orders(changed_since(since)):
                self.order(order)
                newest = max(filter(None, [newest, order.changed_at]))
        if self.settings.emits(RECEIVABLE):
            for receivable in self.connector.receivables(open_only=False, since=since):
                self.receivable(receivable)
                newest = max(filter(None, [newest, receivable.changed_at]))
        self.result.cursor = newest
        return self.result

    def requisition(self, row: dict[str, Any]) -> None:
        state = SNAPSHOT_STATES.get(row["state"])
        number = row.get("number") or str(row["id"])
        change_id = f"{REQUISITION}:{row['id']}:{row['state']}:{_stamp(row).isoformat()}"
        if row["state"] == "waiting" and self.settings.emits(REQUESTED):
            if self.seen(change_id):
                return
            snapshot = self.connector.snapshot(row)
            if not snapshot.approvers:
                self.result.refused.append(f"{REQUESTED} {number}: no Tryton user may approve")
                return
            data = {
                "document": {
                    "id": snapshot.id,
                    "kind": snapshot.kind,
                    "title": snapshot.title,
                    "amount": money(snapshot.amount),
                    "currency": snapshot.currency,
                    "requester": snapshot.requester,
                    "project": snapshot.project,
                    "urgent": False,
                    "lines": [
                        {"sku": line.sku, "name": line.name, "qty": quantity(line.qty),
                         "unit_price": money(line.unit_price)}
                        for line in snapshot.lines
                    ],
                },
                "approvers": snapshot.approvers,
            }
            self.send(REQUESTED, data, subject=number, change_id=change_id)
        elif state in {"approved", "rejected", "cancelled"} and self.settings.emits(DECIDED):
            # approved -> processing -> done are one decision: keyed on the outcome, not the raw state.
            decided_at = _stamp(row)
            data = {
                "document": {"id": number, "kind": "purchase_requisition"},
                "outcome": state,
                "decided_by": related(row, "write_uid.login") or "",
                "decided_at": decided_at.isoformat(),
                "comment": "",
            }
            self.send(DECIDED, data, subject=number, change_id=f"{REQUISITION}:{row['id']}:{state}")

    def stock(self, since: dt.datetime | None) -> dt.datetime | None:
        """One erp.stock.changed per product and warehouse touched by a done move since ``since``."""
        client = self.connector.client
        moves = client.search_read(
            "stock.move", [("state", "=", "done"), *([changed_since(since)] if since else [])],
            ["product.code", "from_location", "to_location", "write_date", "create_date"],
            order=[("write_date", "ASC")],
        )
        if not moves:
            return None
        # Which warehouse each location belongs to (stock.location has no warehouse field: use the tree).
        warehouse_of: dict[int, str] = {}
        for warehouse in self.connector.warehouses():
            inside = client.search_read("stock.location", [("parent", "child_of", [warehouse["id"]])], ["id"])
            for location in inside:
                warehouse_of[location["id"]] = warehouse.get("code") or str(warehouse["id"])
        wanted: dict[tuple[str, str], dt.datetime] = {}
        newest = None
        for move in moves:
            stamp = _stamp(move)
            newest = max(filter(None, [newest, stamp]))
            sku = related(move, "product.code")
            for side in ("from_location", "to_location"):
                code = warehouse_of.get(move.get(side))
                if sku and code:
                    wanted[(sku, code)] = max(filter(None, [wanted.get((sku, code)), stamp]))
        if not wanted:
            return newest
        skus = sorted({sku for sku, _w in wanted})
        suppliers = self.connector.suppliers(skus)
        for level in self.connector.stock(skus=skus):
            stamp = wanted.get((level.sku, level.warehouse))
            if stamp is None:
                continue
            data = {
                "sku": level.sku,
                "name": level.name,
                "warehouse": level.warehouse,
                "warehouse_name": level.warehouse_name,
                "quantity": quantity(level.quantity),
                "reserved": quantity(level.reserved),
                "safety_level": "0",
                "unit": level.unit,
            }
            if level.sku in suppliers:  # the item's supplier and its contact (invited to low-stock groups)
                data["supplier"] = suppliers[level.sku]
            self.send(STOCK, data, subject=f"{level.sku}@{level.warehouse}",
                      change_id=f"stock:{level.sku}:{level.warehouse}:{stamp.isoformat()}")
        return newest

    def order(self, order: Any) -> None:
        data = {
            "order": {
                "id": order.id,
                "customer": order.customer,
                "status": order.status,
                "previous_status": "",
                "amount": money(order.amount),
                "currency": order.currency,
                "sales_rep": "",
                "delivery_date": order.order_date.isoformat() if order.order_date else "",
            }
        }
        self.send(ORDER, data, subject=order.id, change_id=f"sale.sale:{order.id}:{order.status}")


    def receivable(self, receivable: Any) -> None:
        if receivable.due_date is None:  # a draft-like invoice without maturity: nothing to chase yet
            return
        data = {
            "receivable": {
                "id": receivable.id,
                "customer": receivable.customer,
                "project": receivable.project,
                "amount": money(receivable.amount),
                "paid": money(receivable.paid),
                "currency": receivable.currency,
                "due_date": receivable.due_date.isoformat(),
            }
        }
        stamp = receivable.changed_at.isoformat() if receivable.changed_at else ""
        self.send(RECEIVABLE, data, subject=receivable.id,
                  change_id=f"account.invoice:{receivable.id}:{money(receivable.paid)}:{stamp}")


def poll(settings: ConnectorSettings) -> PollResult:
    """Poll one connection once and move its cursor; errors are stored on the settings row."""
    connector = TrytonConnector(settings)
    try:
        result = Poller(settings, connector).run()
    except Exception as exc:
        ConnectorSettings.objects.filter(pk=settings.pk).update(
            last_polled_at=timezone.now(), last_poll_error=str(exc)[:2000]
        )
        raise
    finally:
        connector.client.close()
    settings.cursor = result.cursor or settings.cursor
    settings.last_polled_at = timezone.now()
    settings.last_poll_error = "\n".join(result.refused)[:2000]
    ConnectorSettings.objects.filter(pk=settings.pk).update(
        cursor=settings.cursor, last_polled_at=settings.last_polled_at, last_poll_error=settings.last_poll_error
    )
    return result
