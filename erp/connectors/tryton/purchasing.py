"""Tryton's purchasing capabilities for group boards: open purchase lines of an item, a supplier's
confirmation of a delivery date (and partial quantity), a buyer's expedite request.

What Tryton models natively, and what is a note:
- An open line is a ``purchase.line`` of a confirmed or processing purchase with an incoming
  ``stock.move`` (from the supplier) not yet received. Its promised date is the move's
  ``origin_planned_date`` (the date planned when the purchase was confirmed).
- A confirmed delivery date is written where Tryton keeps it: the ``planned_date`` of the line's open
  incoming moves (Tryton's forecast, the supplier shipment and the move's "delay" read it). The write
  carries Tryton's own optimistic lock (``_timestamp`` in the context), so a move changed meanwhile
  refuses it.
- Core Tryton has no "promised quantity" on an incoming move (splitting a move needs the
  ``stock_split`` module) and nothing for expediting, so the confirmed quantity, who confirmed and
  an expedite request are ``ir.note`` records on the purchase line, readable in Tryton's client.

Every write is preceded by a note holding the idempotency key (``erp/connectors/notes.py``): a retry
with the same key finds it and answers with the line as it is (or finishes writing the date the
first attempt did not reach). ``version`` is a digest of everything the board shows or compares (the
purchase's state, the line's and the moves' write stamps, dates and quantities, the portal's notes),
so any change in Tryton makes an old form stale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

from django.conf import settings
from django.core.cache import cache

from erp.connectors.base import (
    ConnectorError,
    LineConfirmation,
    PurchaseOrderLine,
    StaleObject,
)
from erp.connectors.notes import PortalNote, note_text

from .client import TrytonError

LINE = "purchase.line"
OPEN_PURCHASE_STATES = ["confirmed", "processing"]
OPEN_MOVE_STATES = ["draft", "staging", "assigned"]
LINE_FIELDS = [
    "quantity", "unit_price", "description", "write_date", "create_date", "product.code", "product.name",
    "purchase.number", "purchase.state", "purchase.party", "purchase.party.name", "purchase.currency.code",
    "purchase.warehouse.code", "purchase.warehouse.name",
]
MOVE_FIELDS = ["origin", "state", "planned_date", "origin_planned_date", "quantity", "_timestamp"]
CONFIRM, EXPEDITE = "confirm_delivery", "expedite"


@dataclass(frozen=True)
class LineRead:
    """An open line as built, with the rows it was built from (a write needs their stamps)."""

    line: PurchaseOrderLine
    moves: list[dict[str, Any]]
    notes: list[PortalNote]

    @property
    def open_moves(self) -> list[dict[str, Any]]:
        return [m for m in self.moves if m["state"] in OPEN_MOVE_STATES]


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


class TrytonPurchasing:
    """Mixed into TrytonConnector (``self.client``, ``self._notes``)."""

    client: Any  # and ``_notes(domain)``, both TrytonConnector's

    # --- reading ----------------------------------------------------------------------------

    def _supplier_emails(self, party_ids: list[int]) -> dict[int, str]:
        """The first email contact of each party (Tryton's ``party.email`` is not searchable)."""
        rows = self.client.search_read(
            "party.contact_mechanism", [("party", "in", party_ids), ("type", "=", "email")], ["party", "value"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        ) if party_ids else []
        emails: dict[int, str] = {}
        for row in rows:
            emails.setdefault(row["party"], row.get("value") or "")
        return emails

    def suppliers(self, skus: list[str]) -> dict[str, dict[str, str]]:
        """Each item's own supplier (the first ``purchase.product_supplier`` of its template) with the
        name and address of its first email contact: who is invited to the item's low-stock group."""
        products = self.client.search_read("product.product", [("code", "in", skus)], ["code", "template"]
                                           ) if skus else []
        rows = self.client.search_read(
            "purchase.product_supplier", [("template", "in", sorted({p["template"] for p in products}))],
            ["template", "party", "party.name"], order=[("sequence", "ASC"), ("id", "ASC")],
        ) if products else []
        first: dict[int, dict[str, Any]] = {}
        for row in rows:
            first.setdefault(row["template"], row)
        parties = sorted({row["party"] for row in first.values()})
        contacts: dict[int, dict[str, Any]] = {}
        for row in self.client.search_read(
            "party.contact_mechanism", [("party", "in", parties), ("type", "=", "email")], ["party", "value", "name"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        ) if parties else []:
            contacts.setdefault(row["party"], row)
        found = {}
        for product in products:
            row = first.get(product["template"])
            if row is None:
                continue
            contact = contacts.get(row["party"], {})
            found[product["code"]] = {"name": (row.get("party.") or {}).get("name") or "",
                                      "contact_name": contact.get("name") or "",
                                      "contact_email": contact.get("value") or ""}
        return found

    def _lines(self, domain: list) -> list[PurchaseOrderLine]:
        return [read.line for read in self._reads(domain)]

    def _reads(self, domain: list) -> list[LineRead]:
        """The open lines matching ``domain``, each with the moves and portal notes it was built from
        (four calls, whatever the number of lines)."""
        rows = self.client.search_read(LINE, domain, LINE_FIELDS, order=[("id", "ASC")])
        if not rows:
            return []
        resources = [f"{LINE},{row['id']}" for row in rows]
        moves = self.client.search_read(
            "stock.move", [("origin", "in", resources), ("from_location.type", "=", "supplier")], MOVE_FIELDS,
            order=[("id", "ASC")],
        )
        notes = self._notes([("resource", "in", resources)])
        emails = self._supplier_emails(sorted({row["purchase."]["party"] for row in rows if row.get("purchase.")}))
        lines = []
        for row in rows:
            resource = f"{LINE},{row['id']}"
            own_moves = [m for m in moves if m.get("origin") == resource]
            if not any(m["state"] in OPEN_MOVE_STATES for m in own_moves):
                continue  # received (or cancelled): not open any more
            own_notes = [n for n in notes if n.resource == resource]
            lines.append(LineRead(self._line(row, own_moves, own_notes, emails), own_moves, own_notes))
        return lines

    def _line(self, row: dict[str, Any], moves: list[dict[str, Any]], notes: list[PortalNote],
              emails: dict[int, str]) -> PurchaseOrderLine:
        purchase = row.get("purchase.") or {}
        warehouse = purchase.get("warehouse.") or {}
        product = row.get("product.") or {}
        open_moves = [m for m in moves if m["state"] in OPEN_MOVE_STATES]
        promised = min(filter(None, (m.get("origin_planned_date") for m in open_moves)), default=None)
        planned = min(filter(None, (m.get("planned_date") for m in open_moves)), default=None)
        confirmations = [n for n in notes if n.outcome == CONFIRM]
        last = confirmations[-1] if confirmations else None
        # The date Tryton plans with now: confirmed by the supplier, or moved in Tryton itself.
        confirmed_date = planned if (last is not None or planned != promised) else None
        stamp = "|".join([
            str(purchase.get("state")), str(row.get("write_date") or row.get("create_date")),
            *(f"{m['id']}:{m['state']}:{m.get('planned_date')}:{m.get('quantity')}:{m.get('_timestamp')}"
              for m in moves),
            *(f"{n.key}:{n.outcome}" for n in notes),
        ])
        return PurchaseOrderLine(
            id=str(row["id"]),
            order=purchase.get("number") or "",
            supplier=(purchase.get("party.") or {}).get("name") or "",
            supplier_email=emails.get(purchase.get("party"), ""),
            sku=product.get("code") or "",
            name=row.get("description") or product.get("name") or "",
            warehouse=warehouse.get("code") or "",
            warehouse_name=warehouse.get("name") or "",
            qty=Decimal(str(row["quantity"])),  # a float in Tryton: str() keeps "10.0", not binary noise
            unit_price=row.get("unit_price") or Decimal(0),
            currency=(purchase.get("currency.") or {}).get("code") or "",
            promised_date=promised,
            confirmed_date=confirmed_date,
            confirmed_qty=Decimal(last.facts["qty"]) if last is not None and last.facts.get("qty") else None,
            confirmed_by=unquote(last.actor) if last is not None else "",
            expedite_requested=any(n.outcome == EXPEDITE for n in notes),
            # A digest as a number: equal while nothing the board shows or compares has changed.
            version=int(hashlib.sha256(stamp.encode()).hexdigest()[:12], 16),
        )

    def _cache_key(self, sku: str) -> str:
        where = hashlib.sha256(f"{self.client.url}|{self.client.login_name}|{sku}".encode()).hexdigest()[:32]
        return f"tryton-purchase-lines:{where}"

    def purchase_order_lines(self, *, sku: str = "", supplier_email: str = "") -> list[PurchaseOrderLine]:
        """Open lines (of ``sku``); a supplier's contact gets the lines whose party's first email is
        theirs. Every board refetches at each push, so an item's lines are cached for a few seconds
        (``TRYTON_PURCHASE_LINES_CACHE_SECONDS``) and dropped when the portal writes one of them."""
        key, seconds = self._cache_key(sku), settings.TRYTON_PURCHASE_LINES_CACHE_SECONDS
        lines = cache.get(key) if seconds > 0 else None
        if lines is None:
            domain: list = [("purchase.state", "in", OPEN_PURCHASE_STATES), ("product.code", "!=", None)]
            if sku:
                domain.append(("product.code", "=", sku))
            lines = self._lines(domain)
            if seconds > 0:
                cache.set(key, lines, seconds)
        if supplier_email:
            lines = [line for line in lines if line.supplier_email.lower() == supplier_email.lower()]
        return lines

    def _forget(self, line: PurchaseOrderLine) -> None:
        cache.delete_many([self._cache_key(line.sku), self._cache_key("")])

    def _find(self, line_id: str) -> LineRead | None:
        reads = self._reads([("id", "=", int(line_id)), ("purchase.state", "in", OPEN_PURCHASE_STATES)]
                            ) if str(line_id).isdigit() else []
        return reads[0] if reads else None

    def purchase_order_line(self, line_id: str) -> PurchaseOrderLine | None:
        read = self._find(line_id)
        return read.line if read is not None else None

    # --- writing ----------------------------------------------------------------------------

    def _open_line(self, line_id: str) -> LineRead:
        read = self._find(line_id)
        if read is None:
            raise ConnectorError(f"Tryton has no open purchase line {line_id}", permanent=True)
        return read

    @staticmethod
    def _mine(read: LineRead, key: str, outcome: str) -> PortalNote | None:
        """The note this idempotency key wrote on the line, if any (used for another action: refused)."""
        if not key or " " in key:
            raise ConnectorError("an idempotency key without spaces is required", permanent=True)
        mine = next((n for n in read.notes if n.key == key), None)
        if mine is not None and mine.outcome != outcome:
            raise ConnectorError(f"idempotency key {key!r} was used to {mine.outcome} line {read.line.id}",
                                 permanent=True)
        return mine

    def _write_note(self, line: PurchaseOrderLine, key: str, outcome: str, actor: str, comment: str,
                    facts: dict[str, str] | None = None) -> int:
        resource = f"{LINE},{line.id}"
        [note_id] = self.client.model("ir.note", "create", [{"resource": resource, "message": note_text(
            key, outcome, quote(actor), comment, facts)}])
        return note_id

    def _plan(self, moves: list[dict[str, Any]], day: dt.date) -> None:
        """The planned date of these moves, refused by Tryton if any changed since they were read."""
        todo = [m for m in moves if m.get("planned_date") != day]
        if not todo:
            return
        stamps = {f"stock.move,{m['id']}": m["_timestamp"] for m in todo}
        self.client.model("stock.move", "write", [m["id"] for m in todo], {"planned_date": day},
                          context={"_timestamp": stamps})

    def confirm_delivery(self, confirmation: LineConfirmation) -> PurchaseOrderLine:
        read = self._open_line(confirmation.line_id)
        line, key = read.line, confirmation.idempotency_key
        mine = self._mine(read, key, CONFIRM)
        day = confirmation.delivery_date
        if mine is None:
            if line.version != confirmation.expected_version:
                raise StaleObject(line)
            qty = confirmation.quantity
            if qty is not None and not (Decimal(0) < qty <= line.qty):
                raise ConnectorError("the confirmed quantity must be above 0 and at most the ordered quantity",
                                     permanent=True)
            # Write-ahead: the key is in Tryton before the date is (see the module docstring).
            note_id = self._write_note(line, key, CONFIRM, confirmation.actor, comment="", facts={
                "date": day.isoformat(), "qty": _num(qty if qty is not None else line.qty)})
            try:
                self._plan(read.open_moves, day)
            except TrytonError as exc:
                if exc.kind != "ConcurrencyException":
                    raise
                self.client.model("ir.note", "delete", [note_id])  # nothing was applied: no marker either
                raise StaleObject(self._open_line(line.id).line) from exc
        else:
            # A retry: the first attempt wrote its note; finish what it may not have reached.
            self._plan(read.open_moves, dt.date.fromisoformat(mine.facts.get("date") or day.isoformat()))
        self._forget(line)  # after the write: a board refetching now reads the new date
        return self._open_line(line.id).line

    def expedite_line(self, line_id: str, *, expected_version: int, actor: str, idempotency_key: str
                      ) -> PurchaseOrderLine:
        read = self._open_line(line_id)
        line = read.line
        if self._mine(read, idempotency_key, EXPEDITE) is None:
            if line.version != expected_version:
                raise StaleObject(line)
            self._write_note(line, idempotency_key, EXPEDITE, actor,
                             comment="Please deliver sooner (asked from the portal's group board).")
            self._forget(line)
        return self._open_line(line.id).line
