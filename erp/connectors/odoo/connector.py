"""ErpConnector for Odoo 17/18 over the external JSON-RPC API: purchase orders, stock, receivables.

Documents are ``purchase.order`` records waiting in ``to approve`` (Odoo's double validation).
Approving presses ``button_approve``, rejecting ``button_cancel`` (Odoo has no "rejected" state).
Odoo takes no idempotency key, so — as for Tryton — ``decide`` first posts a chatter note
(``message_post``, subtype ``mail.mt_note``) carrying the key, and a retry reads it back
(``mail.message`` on that order): see ``erp.connectors.notes``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from erp.connectors.base import (
    CHANGES,
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
from erp.connectors.notes import PortalNote, key_marker, note_text, parse_note

from .client import OdooClient, OdooError

ORDER = "purchase.order"
KIND = "purchase_order"
APPROVER_GROUP = ("purchase", "group_purchase_manager")  # "Purchase / Administrator"
SNAPSHOT_STATES = {
    "draft": "pending",
    "sent": "pending",
    "to approve": "pending",
    "purchase": "approved",
    "done": "approved",
    "cancel": "cancelled",
}
BUTTONS = {"approved": "button_approve", "rejected": "button_cancel"}
# A portal rejection cancels the order; with our note it reads back as "rejected".
DECIDED_STATES = {"approved": {"purchase", "done"}, "rejected": {"cancel"}}
ORDER_FIELDS = [
    "name", "state", "partner_id", "amount_total", "currency_id", "user_id", "create_uid", "date_order",
    "date_approve", "write_date", "write_uid", "origin",
]
ODOO_DATETIME = "%Y-%m-%d %H:%M:%S"


def odoo_datetime(value: Any) -> dt.datetime | None:
    """Odoo's ``"2024-05-02 08:30:00"`` (UTC) as an aware datetime; None for false/empty."""
    if not value:
        return None
    return dt.datetime.strptime(str(value)[:19], ODOO_DATETIME).replace(tzinfo=dt.UTC)


def odoo_date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value else None


def to_odoo(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(ODOO_DATETIME)


def m2o_id(value: Any) -> int | None:
    """A many2one as ``[id, "display name"]`` or false."""
    return value[0] if isinstance(value, list | tuple) and value else None


def m2o_name(value: Any) -> str:
    return str(value[1]) if isinstance(value, list | tuple) and len(value) > 1 else ""


def dec(value: Any) -> Decimal:
    # Odoo sends floats: str() keeps the decimal it printed ("12800.0"), not binary noise.
    return Decimal(str(value or 0))


class OdooConnector:
    """ErpConnector for one configured Odoo connection (``erp.models.ConnectorSettings``:
    base URL, database, login and the user's API key as the password)."""

    capabilities = frozenset({STOCK, SALES_ORDERS, RECEIVABLES, CHANGES, TEST_CONNECTION})

    def __init__(self, settings: Any = None, *, client: OdooClient | None = None, slug: str = "odoo") -> None:
        if client is None:
            if settings is None:
                raise ConnectorError(_("This Odoo connector has no connection settings."), permanent=True)
            client = OdooClient(settings.base_url, settings.database, settings.login, settings.get_password())
        self.client = client
        self.slug = settings.connector.slug if settings is not None else slug
        self._approver_group: int | None = None
        self._approvers: list[str] | None = None
        self._logins: dict[int, str] = {}

    def close(self) -> None:
        self.client.close()

    # --- documents ------------------------------------------------------------------------

    def _order(self, external_id: str) -> dict[str, Any] | None:
        rows = self.client.search_read(ORDER, [("name", "=", external_id)], ORDER_FIELDS, limit=1)
        return rows[0] if rows else None

    def logins(self, user_ids: list[int]) -> dict[int, str]:
        missing = sorted({u for u in user_ids if u and u not in self._logins})
        for row in self.client.read("res.users", missing, ["login"]):
            self._logins[row["id"]] = row["login"]
        return self._logins

    def approver_group(self) -> int | None:
        """The id of "Purchase / Administrator", the group Odoo lets approve orders over the limit."""
        if self._approver_group is None:
            module, name = APPROVER_GROUP
            rows = self.client.search_read(
                "ir.model.data", [("module", "=", module), ("name", "=", name), ("model", "=", "res.groups")],
                ["res_id"], limit=1,
            )
            self._approver_group = rows[0]["res_id"] if rows else 0
        return self._approver_group or None

    def approvers(self) -> list[str]:
        if self._approvers is None:
            group = self.approver_group()
            rows = self.client.search_read(
                "res.users", [("groups_id", "in", [group]), ("share", "=", False)], ["login"], order="login asc"
            ) if group else []
            self._approvers = [row["login"] for row in rows]
        return self._approvers

    def lines(self, order_id: int) -> list[DocumentLine]:
        rows = self.client.search_read(
            "purchase.order.line", [("order_id", "=", order_id), ("display_type", "=", False)],
            ["product_id", "name", "product_qty", "price_unit"], order="sequence asc, id asc",
        )
        products = {p["id"]: p for p in self.client.read(
            "product.product", sorted({m2o_id(r["product_id"]) for r in rows if m2o_id(r["product_id"])}),
            ["default_code", "name"])}
        return [
            DocumentLine(
                sku=(products.get(m2o_id(row["product_id"])) or {}).get("default_code") or "",
                name=row.get("name") or m2o_name(row["product_id"]),
                qty=dec(row.get("product_qty")),
                unit_price=dec(row.get("price_unit")),
            )
            for row in rows
        ]

    def snapshot(self, row: dict[str, Any], *, with_lines: bool = True) -> DocumentSnapshot:
        state = SNAPSHOT_STATES.get(row["state"], "pending")
        requester_id = m2o_id(row.get("user_id")) or m2o_id(row.get("create_uid"))
        logins = self.logins([uid for uid in (requester_id, m2o_id(row.get("write_uid"))) if uid])
        decided_by, decided_at = "", None
        if state == "approved":
            decided_by = logins.get(m2o_id(row.get("write_uid")) or 0, "")
            decided_at = odoo_datetime(row.get("date_approve")) or odoo_datetime(row.get("write_date"))
        elif state == "cancelled":
            decided_by = logins.get(m2o_id(row.get("write_uid")) or 0, "")
            decided_at = odoo_datetime(row.get("write_date"))
        supplier = m2o_name(row.get("partner_id"))
        return DocumentSnapshot(
            id=row["name"],
            kind=KIND,
            title=_("Purchase order %(number)s, %(supplier)s") % {"number": row["name"], "supplier": supplier},
            amount=dec(row.get("amount_total")),
            currency=m2o_name(row.get("currency_id")),
            requester=logins.get(requester_id or 0, ""),
            project="",  # core Odoo purchase orders carry no project (analytic distribution is per line)
            state=state,
            approvers=self.approvers(),
            lines=self.lines(row["id"]) if with_lines else [],
            decided_by=decided_by,
            decided_at=decided_at,
        )

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        row = self._order(external_id)
        return self.snapshot(row) if row is not None else None

    # --- decisions ------------------------------------------------------------------------

    def _notes(self, order_id: int, key: str) -> list[PortalNote]:
        rows = self.client.search_read(
            "mail.message",
            [("model", "=", ORDER), ("res_id", "=", order_id), ("body", "ilike", key_marker(key))],
            ["body", "date"], order="id asc",
        )
        notes = [parse_note(row.get("body") or "", f"{ORDER},{order_id}", odoo_datetime(row.get("date"))
                            or dt.datetime.now(dt.UTC)) for row in rows]
        return [note for note in notes if note is not None and note.key == key]

    def decide(
        self, external_id: str, outcome: Outcome, *, actor: str, comment: str, idempotency_key: str,
    ) -> WritebackResult:
        if outcome not in BUTTONS:
            raise ConnectorError(f"unknown outcome {outcome!r}", permanent=True)
        if not idempotency_key or " " in idempotency_key:
            raise ConnectorError("an idempotency key without spaces is required", permanent=True)
        row = self._order(external_id)
        if row is None:
            raise ConnectorError(f"Odoo has no purchase order {external_id!r}", permanent=True)
        mine = next(iter(self._notes(row["id"], idempotency_key)), None)
        if mine is not None and mine.outcome != outcome:
            raise ConnectorError(
                f"idempotency key {idempotency_key!r} was used to {mine.outcome} {external_id}, not {outcome}",
                permanent=True,
            )
        if mine is not None and row["state"] in DECIDED_STATES[outcome]:
            return self._result(row, mine, replayed=True)
        self._raise_if_decided(row)
        if row["state"] != "to approve":
            raise ConnectorError(
                f"purchase order {external_id} is not waiting for approval ({row['state']})", permanent=True
            )
        self._check_may_decide()
        if mine is None:
            # Write-ahead: the key is in Odoo before the button is pressed.
            self.client.execute_kw(ORDER, "message_post", [[row["id"]]], {
                "body": note_text(idempotency_key, outcome, actor, comment),
                "message_type": "comment", "subtype_xmlid": "mail.mt_note",
            })
            mine = next(iter(self._notes(row["id"], idempotency_key)), None)
            if mine is None:
                raise ConnectorError("Odoo did not keep the decision note", permanent=False)
        try:
            self.client.execute_kw(ORDER, BUTTONS[outcome], [[row["id"]]])
        except OdooError as exc:
            if exc.permanent:
                # Someone decided in Odoo between our read and the button: say who, not "UserError".
                after = self._order(external_id)
                if after is not None:
                    self._raise_if_decided(after)
                if exc.kind == "odoo.exceptions.AccessError":
                    raise ConnectorError(
                        _("The Odoo account %(login)s may not approve or cancel purchase orders: %(reason)s")
                        % {"login": self.client.login_name, "reason": exc}, permanent=True) from exc
            raise
        after = self._order(external_id) or row
        return self._result(after, mine, replayed=False)

    def _raise_if_decided(self, row: dict[str, Any]) -> None:
        state = SNAPSHOT_STATES.get(row["state"], "pending")
        if state != "pending":
            snapshot = self.snapshot(row, with_lines=False)
            raise DecisionConflict(state, snapshot.decided_by, snapshot.decided_at)

    def _check_may_decide(self) -> None:
        group = self.approver_group()
        if group is None:
            return
        if self.client.uid is None:
            self.client.authenticate()
        [me] = self.client.read("res.users", [self.client.uid], ["groups_id"])
        if group not in (me.get("groups_id") or []):
            raise ConnectorError(
                _("The Odoo account %(login)s may not approve purchase orders: it lacks the group "
                  "“Purchase / Administrator”. Add the group in Odoo, then retry from admin.")
                % {"login": self.client.login_name},
                permanent=True,
            )

    def _result(self, row: dict[str, Any], note: PortalNote, *, replayed: bool) -> WritebackResult:
        return WritebackResult(
            outcome=note.outcome,  # written from an Outcome
            decided_by=note.actor or self.client.login_name,
            decided_at=note.created_at,
            erp_reference=f"{ORDER},{row['id']}",
            replayed=replayed,
        )

    # --- stock, sales, receivables, users ---------------------------------------------------

    def stock(self, skus: list[str] | None = None, warehouses: list[str] | None = None) -> list[StockLevel]:
        """Quants summed per product and warehouse (``read_group`` on ``stock.quant``, internal locations)."""
        domain: list = [("location_id.usage", "=", "internal")]
        if skus:
            domain.append(("product_id.default_code", "in", skus))
        groups = self.client.execute_kw("stock.quant", "read_group", [domain, ["quantity:sum", "reserved_quantity:sum"],
                                                                      ["product_id", "location_id"]], {"lazy": False})
        location_ids = sorted({m2o_id(g["location_id"]) for g in groups if m2o_id(g["location_id"])})
        warehouse_of = {row["id"]: m2o_id(row.get("warehouse_id"))
                        for row in self.client.read("stock.location", location_ids, ["warehouse_id"])}
        houses = {row["id"]: row for row in self.client.search_read("stock.warehouse", [], ["code", "name"])}
        product_ids = sorted({m2o_id(g["product_id"]) for g in groups if m2o_id(g["product_id"])})
        products = {row["id"]: row for row in self.client.read(
            "product.product", product_ids, ["default_code", "name", "uom_id"])}
        minimum = {
            (m2o_id(row["product_id"]), m2o_id(row["warehouse_id"])): dec(row.get("product_min_qty"))
            for row in self.client.search_read(
                "stock.warehouse.orderpoint", [("product_id", "in", product_ids)],
                ["product_id", "warehouse_id", "product_min_qty"])
        } if product_ids else {}
        totals: dict[tuple[int, int], list[Decimal]] = {}
        for group in groups:
            product, house = m2o_id(group["product_id"]), warehouse_of.get(m2o_id(group["location_id"]) or 0)
            if not product or not house:
                continue
            total = totals.setdefault((product, house), [Decimal(0), Decimal(0)])
            total[0] += dec(group.get("quantity"))
            total[1] += dec(group.get("reserved_quantity"))
        levels = []
        for (product, house), (quantity, reserved) in sorted(totals.items()):
            code = houses.get(house, {}).get("code") or str(house)
            info = products.get(product, {})
            if not info.get("default_code") or (warehouses and code not in warehouses):
                continue
            levels.append(StockLevel(
                sku=info["default_code"], name=info.get("name") or info["default_code"], warehouse=code,
                warehouse_name=houses.get(house, {}).get("name") or "", quantity=quantity, reserved=reserved,
                safety_level=minimum.get((product, house), Decimal(0)), unit=m2o_name(info.get("uom_id")),
            ))
        return sorted(levels, key=lambda level: (level.sku, level.warehouse))

    def sales_orders(self, *, since: dt.datetime | None = None) -> list[SalesOrder]:
        domain = [("write_date", ">=", to_odoo(since))] if since else []
        rows = self.client.search_read(
            "sale.order", domain,
            ["name", "partner_id", "state", "amount_total", "currency_id", "date_order", "commitment_date", "user_id",
             "write_date"],
            order="id asc",
        )
        logins = self.logins([m2o_id(r.get("user_id")) for r in rows if m2o_id(r.get("user_id"))])
        return [
            SalesOrder(
                id=row["name"], customer=m2o_name(row.get("partner_id")), status=row["state"],
                amount=dec(row.get("amount_total")), currency=m2o_name(row.get("currency_id")),
                order_date=odoo_date(row.get("date_order")), delivery_date=odoo_date(row.get("commitment_date")),
                sales_rep=logins.get(m2o_id(row.get("user_id")) or 0, ""),
                changed_at=odoo_datetime(row.get("write_date")),
            )
            for row in rows
        ]

    def receivables(
        self, *, customer: str = "", project: str = "", open_only: bool = True, since: dt.datetime | None = None
    ) -> list[Receivable]:
        """Posted customer invoices (``account.move``, ``move_type`` out_invoice): residual, due date,
        salesperson. No project: core Odoo keeps analytics per line, so a project filter matches nothing."""
        if project:
            return []
        domain: list = [("move_type", "=", "out_invoice"), ("state", "=", "posted")]
        if open_only:
            domain.append(("payment_state", "in", ["not_paid", "partial"]))
        if customer:
            domain.append(("partner_id.name", "=", customer))
        if since:
            domain.append(("write_date", ">=", to_odoo(since)))
        rows = self.client.search_read(
            "account.move", domain,
            ["name", "partner_id", "amount_total", "amount_residual", "currency_id", "invoice_date_due",
             "invoice_user_id", "payment_state", "write_date"],
            order="invoice_date_due asc, id asc",
        )
        logins = self.logins([m2o_id(r.get("invoice_user_id")) for r in rows if m2o_id(r.get("invoice_user_id"))])
        return [
            Receivable(
                id=row["name"], customer=m2o_name(row.get("partner_id")), amount=dec(row.get("amount_total")),
                paid=dec(row.get("amount_total")) - dec(row.get("amount_residual")),
                currency=m2o_name(row.get("currency_id")), due_date=odoo_date(row.get("invoice_date_due")),
                sales_rep=logins.get(m2o_id(row.get("invoice_user_id")) or 0, ""),
                changed_at=odoo_datetime(row.get("write_date")),
            )
            for row in rows
        ]

    def changes(self, since: dt.datetime | None) -> ChangeSet:
        """Orders to approve or decided, sales orders, customer invoices and quants written since ``since``."""
        after = [("write_date", ">=", to_odoo(since))] if since else []
        changes: list[Change] = []
        for row in self.client.search_read(ORDER, after, ["name", "state", "write_date"], order="write_date asc"):
            changes.append(Change("document", row["name"], odoo_datetime(row["write_date"]), row["state"]))
        sales = self.client.search_read("sale.order", after, ["name", "state", "write_date"], order="write_date asc")
        for row in sales:
            changes.append(Change("order", row["name"], odoo_datetime(row["write_date"]), row["state"]))
        for row in self.client.search_read(
            "account.move", [("move_type", "=", "out_invoice"), ("state", "=", "posted"), *after],
            ["name", "payment_state", "write_date"], order="write_date asc",
        ):
            changes.append(Change("receivable", row["name"], odoo_datetime(row["write_date"]), row["payment_state"]))
        quants = self.client.search_read(
            "stock.quant", [("location_id.usage", "=", "internal"), *after], ["product_id", "write_date"],
            order="write_date asc",
        )
        codes = {row["id"]: row.get("default_code") for row in self.client.read(
            "product.product", sorted({m2o_id(q["product_id"]) for q in quants if m2o_id(q["product_id"])}),
            ["default_code", "name"])}
        for quant in quants:
            code = codes.get(m2o_id(quant["product_id"]))
            if code:
                changes.append(Change("stock", code, odoo_datetime(quant["write_date"])))
        return ChangeSet(changes, max((c.changed_at for c in changes), default=since))

    def users(self) -> list[ErpUser]:
        groups = {row["id"]: row.get("full_name") or row.get("name") or str(row["id"])
                  for row in self.client.search_read("res.groups", [], ["full_name", "name"])}
        rows = self.client.search_read(
            "res.users", [("share", "=", False)], ["login", "name", "email", "groups_id", "active"],
            order="login asc", context={"active_test": False},  # deactivated accounts too, to revoke their roles
        )
        return [
            ErpUser(
                login=row["login"], name=row.get("name") or "", email=row.get("email") or "",
                roles=tuple(sorted(groups.get(g, str(g)) for g in row.get("groups_id") or [])),
                active=bool(row.get("active", True)),
            )
            for row in rows
            if row["login"] not in {"__system__", "admin"}
        ]

    # --- test connection ------------------------------------------------------------------

    def test_connection(self) -> list[ConnectionCheck]:
        checks: list[ConnectionCheck] = []
        try:
            version = self.client.version().get("server_version", "?")
            uid = self.client.authenticate()
        except ConnectorError as exc:
            return [ConnectionCheck(_("log in"), False, str(exc))]
        checks.append(ConnectionCheck(_("log in"), True, _("Odoo %(version)s, user id %(id)s")
                                      % {"version": version, "id": uid}))
        for model, operation, label, capability in (
            (ORDER, "read", _("read purchase orders"), "documents"),
            (ORDER, "write", _("write decision notes"), "decide"),
            ("stock.quant", "read", _("read stock"), STOCK),
            ("sale.order", "read", _("read sales orders"), SALES_ORDERS),
            ("account.move", "read", _("read receivables"), RECEIVABLES),
            ("res.users", "read", _("read users and roles"), "users"),
        ):
            try:
                ok = bool(self.client.execute_kw(model, "check_access_rights", [operation], {"raise_exception": False}))
                detail = "" if ok else _("no %(operation)s access to %(model)s") % {
                    "operation": operation, "model": model}
            except ConnectorError as exc:  # the app is not installed: "Object … doesn't exist"
                ok, detail = False, str(exc)
            checks.append(ConnectionCheck(label, ok, detail, capability))
        try:
            self._check_may_decide()
            checks.append(ConnectionCheck(_("approve and cancel purchase orders"), True, capability="decide"))
        except ConnectorError as exc:
            checks.append(ConnectionCheck(_("approve and cancel purchase orders"), False, str(exc), "decide"))
        return checks
