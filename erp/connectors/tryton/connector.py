"""ErpConnector for Tryton (8.x) over JSON-RPC: purchase requisitions, stock, sales, users, and the
purchasing capabilities of group boards (``purchasing.py``).

Tryton has no idempotency keys, so ``decide`` writes the key into a note on the requisition
(``ir.note``) *before* pressing the button. A retry finds the note: if the requisition already holds
that outcome the call is a replay; if it is still waiting the first attempt never reached the
button and it is pressed now; anything else is a conflict. A decided requisition without our note
was decided in Tryton itself: DecisionConflict.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from erp.connectors.base import (
    CHANGES,
    PURCHASING_CAPABILITIES,
    RECEIVABLES,
    SALES_ORDERS,
    STOCK,
    TEST_CONNECTION,
    Change,
    ChangeSet,
    ConnectionCheck,
    ConnectorError,
    DecisionConflict,
    DocumentLine,
    DocumentSnapshot,
    ErpUser,
    Outcome,
    Receivable,
    SalesOrder,
    StockLevel,
    WritebackResult,
)
from erp.connectors.notes import NOTE_PREFIX, PortalNote, note_text, parse_note  # noqa: F401 - re-exported

from .client import TrytonClient, TrytonError
from .purchasing import TrytonPurchasing

REQUISITION = "purchase.requisition"
KIND = "purchase_requisition"
# Tryton state -> DocumentSnapshot state. Approval moves on to processing/done by itself.
SNAPSHOT_STATES = {
    "draft": "pending",
    "waiting": "pending",
    "approved": "approved",
    "processing": "approved",
    "done": "approved",
    "rejected": "rejected",
    "cancelled": "cancelled",
}
BUTTONS = {"approved": "approve", "rejected": "reject"}
REQUISITION_FIELDS = [
    "number", "state", "description", "employee", "employee.party.name", "total_amount", "currency.code",
    "create_date", "write_date", "write_uid.login", "approved_by.party.name", "rejected_by.party.name",
    "warehouse.code",
]
LINE_FIELDS = ["product.code", "product.name", "description", "quantity", "unit_price"]


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Tryton's naive UTC timestamps as aware datetimes."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def changed_since(since: dt.datetime | None) -> list:
    """A Tryton domain: created or written at/after ``since`` (naive UTC), everything when None."""
    if since is None:
        return []
    naive = since.astimezone(dt.UTC).replace(tzinfo=None)
    return ["OR", ("write_date", ">=", naive), ("create_date", ">=", naive)]


def related(record: dict[str, Any], path: str) -> Any:
    """``record["a."]["b"]`` for ``"a.b"``: how search_read returns dotted fields (None when empty)."""
    head, _dot, rest = path.partition(".")
    if not rest:
        return record.get(head)
    value = record.get(head + ".")
    return related(value, rest) if isinstance(value, dict) else None


# The shapes of the optional capabilities live in erp.connectors.base; the names stay importable here.
Check = ConnectionCheck

class TrytonConnector(TrytonPurchasing):
    """ErpConnector for one configured Tryton connection (``erp.models.ConnectorSettings``);
    purchasing for group boards in ``purchasing.py``."""

    capabilities = frozenset({STOCK, SALES_ORDERS, RECEIVABLES, CHANGES, TEST_CONNECTION}) | PURCHASING_CAPABILITIES

    def __init__(self, settings: Any = None, *, client: TrytonClient | None = None, slug: str = "tryton") -> None:
        if client is None:
            if settings is None:
                raise ConnectorError(_("This Tryton connector has no connection settings."), permanent=True)
            client = TrytonClient(settings.base_url, settings.database, settings.login, settings.get_password())
        self.client = client
        self.slug = settings.connector.slug if settings is not None else slug
        self._approver_groups: list[int] | None = None
        self._approvers: list[str] | None = None
        self._logins: dict[int, str] = {}

    # --- documents ------------------------------------------------------------------------

    def _requisition(self, external_id: str) -> dict[str, Any] | None:
        rows = self.client.search_read(REQUISITION, [("number", "=", external_id)], REQUISITION_FIELDS, limit=1)
        return rows[0] if rows else None

    def requisitions(self, domain: list) -> list[dict[str, Any]]:
        return self.client.search_read(REQUISITION, domain, REQUISITION_FIELDS, order=[("write_date", "ASC")])

    def lines(self, requisition_id: int) -> list[DocumentLine]:
        rows = self.client.search_read(
            "purchase.requisition.line", [("requisition", "=", requisition_id)], LINE_FIELDS, order=[("id", "ASC")]
        )
        return [
            DocumentLine(
                sku=related(row, "product.code") or "",
                name=row.get("description") or related(row, "product.name") or "",
                qty=Decimal(str(row["quantity"])),  # a float in Tryton: str() keeps "4.0", not binary noise
                unit_price=row.get("unit_price") or Decimal(0),
            )
            for row in rows
        ]

    def approver_groups(self) -> list[int]:
        """The groups allowed to press ``approve`` (empty: everybody with write access)."""
        if self._approver_groups is None:
            rows = self.client.search_read(
                "ir.model.button", [("model", "=", REQUISITION), ("name", "=", "approve")], ["groups"]
            )
            self._approver_groups = sorted({group for row in rows for group in row["groups"]})
        return self._approver_groups

    def approvers(self) -> list[str]:
        # Cached for the life of this connector (one poll, one writeback): a poll reads many documents.
        if self._approvers is None:
            groups = self.approver_groups()
            rows = self.client.search_read(
                "res.user", [("groups", "in", groups)], ["login"], order=[("login", "ASC")]
            ) if groups else []
            self._approvers = [row["login"] for row in rows]
        return self._approvers

    def login_of_employee(self, employee_id: int | None, fallback: str = "") -> str:
        if not employee_id:
            return fallback
        if employee_id not in self._logins:
            rows = self.client.search_read("res.user", [("employees", "in", [employee_id])], ["login"], limit=1)
            self._logins[employee_id] = rows[0]["login"] if rows else ""
        return self._logins[employee_id] or fallback

    def snapshot(self, row: dict[str, Any], *, with_lines: bool = True) -> DocumentSnapshot:
        state = SNAPSHOT_STATES.get(row["state"], "pending")
        decided_by = ""
        if state == "approved":
            decided_by = related(row, "approved_by.party.name") or ""
        elif state == "rejected":
            decided_by = related(row, "rejected_by.party.name") or ""
        number = row.get("number") or str(row["id"])
        return DocumentSnapshot(
            id=number,
            kind=KIND,
            title=row.get("description") or _("Purchase requisition %(number)s") % {"number": number},
            amount=row.get("total_amount") or Decimal(0),
            currency=related(row, "currency.code") or "",
            requester=self.login_of_employee(row.get("employee"), related(row, "employee.party.name") or ""),
            project="",
            state=state,
            approvers=self.approvers(),
            lines=self.lines(row["id"]) if with_lines else [],
            decided_by=decided_by,
            decided_at=utc(row.get("write_date")) if state in {"approved", "rejected", "cancelled"} else None,
        )

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        row = self._requisition(external_id)
        return self.snapshot(row) if row is not None else None

    # --- decisions ------------------------------------------------------------------------

    def _notes(self, domain: list) -> list[PortalNote]:
        rows = self.client.search_read("ir.note", domain, ["message", "resource", "create_date"], order=[("id", "ASC")])
        notes = [parse_note(row.get("message") or "", row.get("resource") or "", row["create_date"]) for row in rows]
        return [note for note in notes if note is not None]

    def decide(
        self,
        external_id: str,
        outcome: Outcome,
        *,
        actor: str,
        comment: str,
        idempotency_key: str,
    ) -> WritebackResult:
        if outcome not in BUTTONS:
            raise ConnectorError(f"unknown outcome {outcome!r}", permanent=True)
        if not idempotency_key or " " in idempotency_key:
            raise ConnectorError("an idempotency key without spaces is required", permanent=True)
        row = self._requisition(external_id)
        if row is None:
            raise ConnectorError(f"Tryton has no purchase requisition {external_id!r}", permanent=True)
        resource = f"{REQUISITION},{row['id']}"
        # Tryton lets notes be searched per resource only; the portal's keys are unique per decision.
        mine = next((n for n in self._notes([("resource", "=", resource)]) if n.key == idempotency_key), None)
        if mine is not None and mine.outcome != outcome:
            raise ConnectorError(
                f"idempotency key {idempotency_key!r} was used to {mine.outcome} {external_id}, not {outcome}",
                permanent=True,
            )
        state = SNAPSHOT_STATES.get(row["state"], "pending")
        if mine is not None and state == mine.outcome:
            return self._result(row, mine, replayed=True)
        if state in {"approved", "rejected", "cancelled"}:
            snapshot = self.snapshot(row, with_lines=False)
            raise DecisionConflict(state, snapshot.decided_by or related(row, "write_uid.login") or "",
                                   snapshot.decided_at)
        if row["state"] != "waiting":
            raise ConnectorError(
                f"purchase requisition {external_id} is not waiting for approval ({row['state']})", permanent=True
            )
        self._check_may_decide(outcome)
        if mine is None:
            # Write-ahead: the key is in Tryton before the button is pressed (see the module docstring).
            self.client.model("ir.note", "create", [{"resource": resource, "message": note_text(
                idempotency_key, outcome, actor, comment)}])
            written = [n for n in self._notes([("resource", "=", resource)]) if n.key == idempotency_key]
            if not written:
                raise ConnectorError("Tryton did not keep the decision note", permanent=False)
            mine = written[0]
        try:
            self.client.model(REQUISITION, BUTTONS[outcome], [row["id"]])
        except TrytonError as exc:
            if exc.permanent and "not allowed" in str(exc):
                raise ConnectorError(
                    _("The Tryton account %(login)s may not %(button)s purchase requisitions (it needs the group "
                      "“Purchase Requisition Approval”): %(reason)s")
                    % {"login": self.client.login_name, "button": BUTTONS[outcome], "reason": exc},
                    permanent=True,
                ) from exc
            raise  # a validation error is permanent with Tryton's own message; the rest is retried
        after = self._requisition(external_id) or row
        return self._result(after, mine, replayed=False)

    def _check_may_decide(self, outcome: str) -> None:
        """Refuse before writing anything when the account lacks the button's group: a clear,
        permanent reason instead of Tryton's generic "not allowed"."""
        needed = set(self.approver_groups())
        if needed and not needed & set(self.client.context.get("groups") or []):
            raise ConnectorError(
                _("The Tryton account %(login)s may not %(button)s purchase requisitions: it lacks the group "
                  "“Purchase Requisition Approval”. Add the group in Tryton, then retry from admin.")
                % {"login": self.client.login_name, "button": BUTTONS[outcome]},
                permanent=True,
            )

    def _result(self, row: dict[str, Any], note: PortalNote, *, replayed: bool) -> WritebackResult:
        snapshot_by = related(row, "approved_by.party.name") if note.outcome == "approved" else related(
            row, "rejected_by.party.name")
        return WritebackResult(
            outcome=note.outcome,  # type: ignore[arg-type]  # written from an Outcome
            decided_by=note.actor or snapshot_by or self.client.login_name,
            decided_at=utc(note.created_at),  # type: ignore[arg-type]
            erp_reference=f"{REQUISITION},{row['id']}",
            replayed=replayed,
        )

    # --- stock, sales, users --------------------------------------------------------------

    def warehouses(self) -> list[dict[str, Any]]:
        return self.client.search_read(
            "stock.location", [("type", "=", "warehouse")], ["code", "name"], order=[("code", "ASC")]
        )

    def stock(self, skus: list[str] | None = None, warehouses: list[str] | None = None) -> list[StockLevel]:
        """Quantity on hand (and forecast) per product and warehouse, products with a code only."""
        domain: list = [("code", "in", skus)] if skus else [("code", "!=", None)]
        levels = []
        for warehouse in self.warehouses():
            if warehouses and warehouse["code"] not in warehouses:
                continue
            rows = self.client.search_read(
                "product.product", domain, ["code", "name", "quantity", "forecast_quantity", "default_uom.symbol"],
                order=[("code", "ASC")], context={"locations": [warehouse["id"]], "with_childs": True},
            )
            levels += [
                StockLevel(
                    sku=row["code"],
                    name=row.get("name") or row["code"],
                    warehouse=warehouse.get("code") or str(warehouse["id"]),
                    warehouse_name=warehouse.get("name") or "",
                    quantity=Decimal(str(row.get("quantity") or 0)),
                    # Reserved: what planned moves take out beyond what arrives (never negative).
                    reserved=max(Decimal(str(row.get("quantity") or 0))
                                 - Decimal(str(row.get("forecast_quantity") or 0)), Decimal(0)),
                    forecast=Decimal(str(row.get("forecast_quantity") or 0)),
                    unit=related(row, "default_uom.symbol") or "",
                )
                for row in rows
            ]
        return levels

    def sales_orders(self, domain: list | None = None, *, since: dt.datetime | None = None) -> list[SalesOrder]:
        rows = self.client.search_read(
            "sale.sale", [part for part in (domain, changed_since(since)) if part],
            ["number", "state", "party.rec_name", "total_amount", "currency.code", "sale_date", "write_date",
             "create_date"],
            order=[("id", "ASC")],
        )
        return [
            SalesOrder(
                id=row.get("number") or str(row["id"]),
                customer=related(row, "party.rec_name") or "",
                status=row["state"],
                amount=row.get("total_amount") or Decimal(0),
                currency=related(row, "currency.code") or "",
                order_date=row.get("sale_date"),
                changed_at=utc(row.get("write_date") or row.get("create_date")),
            )
            for row in rows
        ]

    def receivables(
        self, *, customer: str = "", project: str = "", open_only: bool = True, since: dt.datetime | None = None,
        domain: list | None = None,
    ) -> list[Receivable]:
        """Posted customer invoices. Due date = the earliest maturity of the lines to pay; paid = total
        minus what is still to pay. Core Tryton invoices carry no project: ``project`` matches nothing."""
        if project:
            return []
        where: list = [("type", "=", "out"), ("state", "in", ["posted", "paid"]), *([domain] if domain else [])]
        if open_only:
            where.append(("state", "=", "posted"))
        if customer:
            where.append(("party.name", "=", customer))
        if since:
            where.append(changed_since(since))
        rows = self.client.search_read(
            "account.invoice", where,
            ["number", "party.name", "total_amount", "amount_to_pay", "currency.code", "state", "invoice_date",
             "lines_to_pay", "write_date", "create_date"],
            order=[("id", "ASC")],
        )
        line_ids = sorted({line for row in rows for line in row.get("lines_to_pay") or []})
        maturity: dict[int, dt.date | None] = {}
        if line_ids:
            for line in self.client.model("account.move.line", "read", line_ids, ["maturity_date"]):
                maturity[line["id"]] = line.get("maturity_date")
        receivables = []
        for row in rows:
            dates = [maturity[i] for i in row.get("lines_to_pay") or [] if maturity.get(i)]
            total = row.get("total_amount") or Decimal(0)
            # amount_to_pay is 0 on a paid invoice; on a posted one it is what the customer still owes.
            to_pay = row.get("amount_to_pay") if row["state"] == "posted" else Decimal(0)
            receivables.append(Receivable(
                id=row.get("number") or str(row["id"]),
                customer=related(row, "party.name") or "",
                amount=total,
                paid=total - (to_pay if to_pay is not None else total),
                currency=related(row, "currency.code") or "",
                due_date=min(dates) if dates else row.get("invoice_date"),
                changed_at=utc(row.get("write_date") or row.get("create_date")),
            ))
        return receivables

    def changes(self, since: dt.datetime | None) -> ChangeSet:
        """Requisitions, sales, customer invoices and done stock moves created or written since ``since``."""
        domain = changed_since(since)
        changes: list[Change] = []
        for row in self.requisitions(domain):
            changes.append(Change("document", row.get("number") or str(row["id"]),
                                  utc(row.get("write_date") or row.get("create_date")), row["state"]))
        for order in self.sales_orders(domain):
            changes.append(Change("order", order.id, order.changed_at, order.status))  # type: ignore[arg-type]
        for receivable in self.receivables(open_only=False, domain=domain):
            changes.append(Change("receivable", receivable.id, receivable.changed_at))  # type: ignore[arg-type]
        moves = self.client.search_read(
            "stock.move", [("state", "=", "done"), *([domain] if domain else [])],
            ["product.code", "write_date", "create_date"], order=[("write_date", "ASC")],
        )
        for move in moves:
            if related(move, "product.code"):
                changes.append(Change("stock", related(move, "product.code"),
                                      utc(move.get("write_date") or move.get("create_date"))))  # type: ignore[arg-type]
        stamps = [c.changed_at for c in changes if c.changed_at is not None]
        return ChangeSet(changes, max(stamps, default=since))

    def users(self) -> list[ErpUser]:
        groups = {row["id"]: row["name"] for row in self.client.search_read("res.group", [], ["name"])}
        rows = self.client.search_read(
            "res.user", [], ["login", "name", "email", "groups", "employee.party.name", "active"],
            order=[("login", "ASC")],
        )
        return [
            ErpUser(
                login=row["login"],
                name=row.get("name") or "",
                email=row.get("email") or "",
                roles=tuple(sorted(groups.get(g, str(g)) for g in row.get("groups") or [])),
                employee=related(row, "employee.party.name") or "",
                active=bool(row.get("active", True)),
            )
            for row in rows
            if row["login"] != "admin"
        ]

    # --- test connection ------------------------------------------------------------------

    def test_connection(self) -> list[Check]:
        """Log in and say what works and what this account may do."""
        checks: list[Check] = []
        try:
            user_id = self.client.login()
            checks.append(Check(_("log in"), True, _("user id %(id)s") % {"id": user_id}))
            preferences = self.client.context
        except ConnectorError as exc:
            return [*checks, Check(_("log in"), False, str(exc))]
        try:
            access = self.client.model(
                "ir.model.access", "get_access",
                [REQUISITION, "ir.note", "stock.move", "sale.sale", "res.user", "account.invoice", "account.move.line"]
            )
        except ConnectorError as exc:
            return [*checks, Check(_("read access rights"), False, str(exc))]
        for model, label in (
            (REQUISITION, _("read purchase requisitions")),
            ("stock.move", _("read stock")),
            ("sale.sale", _("read sales orders")),
            ("res.user", _("read users and roles")),
            ("account.move.line", _("read receivables")),
        ):
            ok = bool(access.get(model, {}).get("read"))
            checks.append(Check(label, ok, "" if ok else _("no read access to %(model)s") % {"model": model}))
        checks.append(Check(
            _("write decision notes"), bool(access.get("ir.note", {}).get("create")), "ir.note"))
        user_groups = set(preferences.get("groups") or [])
        try:
            needed = set(self.approver_groups())
            can_approve = not needed or bool(needed & user_groups)
            detail = "" if can_approve else _("the account lacks the group “Purchase Requisition Approval”")
            checks.append(Check(_("approve and reject requisitions"), can_approve, detail))
        except ConnectorError as exc:
            checks.append(Check(_("approve and reject requisitions"), False, str(exc)))
        if not preferences.get("employee"):
            checks.append(Check(_("employee"), False, _("the account has no employee: Tryton refuses approvals")))
        return checks
