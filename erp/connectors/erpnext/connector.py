"""ErpConnector for ERPNext (Frappe REST): Purchase Orders and Expense Claims under a workflow.

A document is approved or rejected the way ERPNext's own form does it: the workflow action
(``frappe.model.workflow.apply_workflow(doc, action)``), so ERPNext checks the account's roles,
self-approval and conditions itself. Frappe takes no idempotency key: ``decide`` first adds a
Comment carrying the key and a retry reads it back (``erp.connectors.notes``).

Options (``ConnectorSettings.options``; every key optional)::

    {"doctypes": ["Purchase Order", "Expense Claim"],
     "actions": {"approved": "Approve", "rejected": "Reject"},
     "approved_states": ["Approved"], "rejected_states": ["Rejected"],
     "time_zone": "Asia/Shanghai"}

``time_zone`` is ERPNext's system time zone: Frappe's ``creation``/``modified`` are naive in it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
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

from .client import FrappeClient, FrappeError

KINDS = {"Purchase Order": "purchase_order", "Expense Claim": "expense_claim"}
FRAPPE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Options:
    doctypes: tuple[str, ...] = ("Purchase Order", "Expense Claim")
    actions: dict[str, str] = field(default_factory=lambda: {"approved": "Approve", "rejected": "Reject"})
    approved_states: tuple[str, ...] = ("Approved",)
    rejected_states: tuple[str, ...] = ("Rejected",)
    time_zone: str = "UTC"


def parse_options(raw: Any) -> Options:
    """The options with defaults, or ValueError naming what is wrong (shown in the admin form)."""
    raw = {} if raw is None or raw == "" else raw
    if not isinstance(raw, dict):
        raise ValueError(_("ERPNext options must be a JSON object."))
    unknown = set(raw) - {"doctypes", "actions", "approved_states", "rejected_states", "time_zone"}
    if unknown:
        raise ValueError(_("Unknown ERPNext option(s): %(names)s.") % {"names": ", ".join(sorted(unknown))})
    options = Options()
    values: dict[str, Any] = {}
    for name in ("doctypes", "approved_states", "rejected_states"):
        if name in raw:
            value = raw[name]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError(_("“%(name)s” must be a non-empty list of names.") % {"name": name})
            values[name] = tuple(value)
    for doctype in values.get("doctypes", ()):
        if doctype not in KINDS:
            raise ValueError(_("Unsupported document type “%(doctype)s” (supported: %(supported)s).")
                             % {"doctype": doctype, "supported": ", ".join(KINDS)})
    if "actions" in raw:
        actions = raw["actions"]
        if not isinstance(actions, dict) or set(actions) != {"approved", "rejected"} or not all(
                isinstance(v, str) and v for v in actions.values()):
            raise ValueError(_("“actions” must name the workflow action for “approved” and for “rejected”."))
        values["actions"] = dict(actions)
    if "time_zone" in raw:
        try:
            zoneinfo.ZoneInfo(str(raw["time_zone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(_("Unknown time zone “%(zone)s”.") % {"zone": raw["time_zone"]}) from exc
        values["time_zone"] = str(raw["time_zone"])
    return Options(**{**options.__dict__, **values})


def dec(value: Any) -> Decimal:
    return Decimal(str(value or 0))


class ErpNextConnector:
    """ErpConnector for one configured ERPNext site (login = API key, password = API secret)."""

    capabilities = frozenset({STOCK, SALES_ORDERS, RECEIVABLES, CHANGES, TEST_CONNECTION})

    def __init__(self, settings: Any = None, *, client: FrappeClient | None = None, options: Any = None,
                 slug: str = "erpnext") -> None:
        if client is None:
            if settings is None:
                raise ConnectorError(_("This ERPNext connector has no connection settings."), permanent=True)
            client = FrappeClient(settings.base_url, settings.login, settings.get_password())
        self.client = client
        self.slug = settings.connector.slug if settings is not None else slug
        self.options = parse_options(options if options is not None else getattr(settings, "options", {}))
        self.zone = zoneinfo.ZoneInfo(self.options.time_zone)
        self._workflows: dict[str, dict[str, Any] | None] = {}
        self._role_users: dict[str, list[str]] = {}
        self._me: str | None = None

    def close(self) -> None:
        self.client.close()

    # --- time -------------------------------------------------------------------------------

    def parse_time(self, value: Any) -> dt.datetime | None:
        if not value:
            return None
        text = str(value)
        parsed = dt.datetime.fromisoformat(text if "." in text else text + ".0")
        return parsed.replace(tzinfo=self.zone) if parsed.tzinfo is None else parsed

    def frappe_time(self, value: dt.datetime) -> str:
        return value.astimezone(self.zone).replace(tzinfo=None).strftime(FRAPPE_DATETIME)

    # --- documents ------------------------------------------------------------------------

    def find(self, external_id: str) -> tuple[str, dict[str, Any]] | None:
        for doctype in self.options.doctypes:
            doc = self.client.get_doc(doctype, external_id)
            if doc is not None:
                return doctype, doc
        return None

    def workflow(self, doctype: str) -> dict[str, Any] | None:
        """The active Workflow of ``doctype`` with its transitions, or None."""
        if doctype not in self._workflows:
            rows = self.client.get_list("Workflow", ["name"], [["document_type", "=", doctype], ["is_active", "=", 1]],
                                        limit=1)
            self._workflows[doctype] = self.client.get_doc("Workflow", rows[0]["name"]) if rows else None
        return self._workflows[doctype]

    def state_field(self, doctype: str) -> str:
        workflow = self.workflow(doctype)
        return (workflow or {}).get("workflow_state_field") or "workflow_state"

    def approve_roles(self, doctype: str, state: str) -> list[str]:
        workflow = self.workflow(doctype) or {}
        action = self.options.actions["approved"]
        return sorted({t["allowed"] for t in workflow.get("transitions") or []
                       if t.get("action") == action and t.get("state") == state and t.get("allowed")})

    def users_with_role(self, role: str) -> list[str]:
        if role not in self._role_users:
            rows = self.client.get_list("User", ["name"], [["Has Role", "role", "=", role], ["enabled", "=", 1]],
                                        order_by="name asc")
            self._role_users[role] = [row["name"] for row in rows if row["name"] != "Administrator"]
        return self._role_users[role]

    def state_of(self, doctype: str, doc: dict[str, Any]) -> str:
        if doc.get("docstatus") == 2:
            return "cancelled"
        workflow_state = doc.get(self.state_field(doctype)) or ""
        if doctype == "Expense Claim" and not workflow_state:
            workflow_state = doc.get("approval_status") or ""
        if workflow_state in self.options.approved_states:
            return "approved"
        if workflow_state in self.options.rejected_states:
            return "rejected"
        return "pending"

    def snapshot(self, doctype: str, doc: dict[str, Any]) -> DocumentSnapshot:
        state = self.state_of(doctype, doc)
        if doctype == "Expense Claim":
            title = _("Expense claim %(name)s, %(employee)s") % {"name": doc["name"],
                                                               "employee": doc.get("employee_name") or ""}
            amount = dec(doc.get("grand_total") or doc.get("total_claimed_amount"))
            lines = [DocumentLine(sku="", name=row.get("description") or row.get("expense_type") or "",
                                  qty=Decimal(1), unit_price=dec(row.get("amount")))
                     for row in doc.get("expenses") or []]
            approvers = [doc["expense_approver"]] if doc.get("expense_approver") else []
        else:
            title = _("Purchase order %(number)s, %(supplier)s") % {
                "number": doc["name"], "supplier": doc.get("supplier_name") or doc.get("supplier") or ""}
            amount = dec(doc.get("grand_total"))
            lines = [DocumentLine(sku=row.get("item_code") or "", name=row.get("item_name") or "",
                                  qty=dec(row.get("qty")), unit_price=dec(row.get("rate")))
                     for row in doc.get("items") or []]
            roles = self.approve_roles(doctype, doc.get(self.state_field(doctype)) or "")
            approvers = sorted({user for role in roles for user in self.users_with_role(role)})
        items = doc.get("items") or []
        project = doc.get("project") or next((row.get("project") for row in items if row.get("project")), "") or ""
        decided = state != "pending"
        return DocumentSnapshot(
            id=doc["name"], kind=KINDS[doctype], title=title, amount=amount, currency=doc.get("currency") or "",
            requester=doc.get("owner") or "", project=project, state=state, approvers=approvers, lines=lines,
            decided_by=(doc.get("modified_by") or "") if decided else "",
            decided_at=self.parse_time(doc.get("modified")) if decided else None,
        )

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        found = self.find(external_id)
        return self.snapshot(*found) if found else None

    # --- decisions ------------------------------------------------------------------------

    def _notes(self, doctype: str, name: str, key: str) -> list[PortalNote]:
        rows = self.client.get_list(
            "Comment", ["name", "content", "creation"],
            [["reference_doctype", "=", doctype], ["reference_name", "=", name], ["comment_type", "=", "Comment"],
             ["content", "like", f"%{key_marker(key)}%"]],
            order_by="creation asc",
        )
        notes = [parse_note(row.get("content") or "", f"{doctype},{name}",
                            self.parse_time(row.get("creation")) or dt.datetime.now(dt.UTC)) for row in rows]
        return [note for note in notes if note is not None and note.key == key]

    def decide(
        self, external_id: str, outcome: Outcome, *, actor: str, comment: str, idempotency_key: str,
    ) -> WritebackResult:
        if outcome not in self.options.actions:
            raise ConnectorError(f"unknown outcome {outcome!r}", permanent=True)
        if not idempotency_key or " " in idempotency_key:
            raise ConnectorError("an idempotency key without spaces is required", permanent=True)
        found = self.find(external_id)
        if found is None:
            raise ConnectorError(f"ERPNext has no {' or '.join(self.options.doctypes)} {external_id!r}",
                                 permanent=True)
        doctype, doc = found
        mine = next(iter(self._notes(doctype, external_id, idempotency_key)), None)
        if mine is not None and mine.outcome != outcome:
            raise ConnectorError(
                f"idempotency key {idempotency_key!r} was used to {mine.outcome} {external_id}, not {outcome}",
                permanent=True,
            )
        state = self.state_of(doctype, doc)
        if mine is not None and state == outcome:
            return self._result(doctype, doc, mine, replayed=True)
        self._raise_if_decided(doctype, doc)
        if self.workflow(doctype) is None:
            raise ConnectorError(
                _("ERPNext has no active workflow for %(doctype)s: add one (with the actions %(actions)s) in ERPNext.")
                % {"doctype": doctype, "actions": " / ".join(self.options.actions.values())}, permanent=True)
        if mine is None:
            # Write-ahead: the key is in ERPNext before the workflow action runs.
            self.client.insert("Comment", {
                "comment_type": "Comment", "reference_doctype": doctype, "reference_name": external_id,
                "content": note_text(idempotency_key, outcome, actor, comment).replace("\n", "<br>"),
            })
            mine = next(iter(self._notes(doctype, external_id, idempotency_key)), None)
            if mine is None:
                raise ConnectorError("ERPNext did not keep the decision comment", permanent=False)
        action = self.options.actions[outcome]
        try:
            after = self.client.method("frappe.model.workflow.apply_workflow", doc=doc, action=action)
        except FrappeError as exc:
            if exc.permanent:
                # Decided by someone else meanwhile: a conflict with who and when, not "not a valid action".
                latest = self.client.get_doc(doctype, external_id)
                if latest is not None:
                    self._raise_if_decided(doctype, latest)
                if exc.kind in {"WorkflowTransitionError", "PermissionError"}:
                    raise ConnectorError(
                        _("The ERPNext account %(user)s may not “%(action)s” %(doctype)s %(name)s (its roles allow no "
                          "such workflow action from this state): %(reason)s")
                        % {"user": self.client.api_key, "action": action, "doctype": doctype, "name": external_id,
                           "reason": exc}, permanent=True) from exc
            raise
        return self._result(doctype, after if isinstance(after, dict) else doc, mine, replayed=False)

    def _raise_if_decided(self, doctype: str, doc: dict[str, Any]) -> None:
        state = self.state_of(doctype, doc)
        if state != "pending":
            raise DecisionConflict(state, doc.get("modified_by") or "", self.parse_time(doc.get("modified")))

    def _result(self, doctype: str, doc: dict[str, Any], note: PortalNote, *, replayed: bool) -> WritebackResult:
        return WritebackResult(
            outcome=note.outcome,  # type: ignore[arg-type]  # written from an Outcome
            decided_by=note.actor or doc.get("modified_by") or "",
            decided_at=note.created_at,
            erp_reference=f"{doctype},{doc['name']}",
            replayed=replayed,
        )

    # --- stock, sales, receivables, users ---------------------------------------------------

    def stock(self, skus: list[str] | None = None, warehouses: list[str] | None = None) -> list[StockLevel]:
        """``Bin`` rows (one per item and warehouse): actual and reserved quantity; safety stock from Item."""
        filters: list = []
        if skus:
            filters.append(["item_code", "in", skus])
        if warehouses:
            filters.append(["warehouse", "in", warehouses])
        bins = self.client.get_list("Bin", ["item_code", "warehouse", "actual_qty", "reserved_qty", "projected_qty",
                                            "stock_uom"], filters, order_by="item_code asc, warehouse asc")
        codes = sorted({row["item_code"] for row in bins})
        items = {row["item_code"]: row for row in self.client.get_list(
            "Item", ["item_code", "item_name", "safety_stock"], [["item_code", "in", codes]])} if codes else {}
        names = {row["name"]: row.get("warehouse_name") or row["name"] for row in self.client.get_list(
            "Warehouse", ["name", "warehouse_name"], [["name", "in", sorted({r["warehouse"] for r in bins})]])} \
            if bins else {}
        return [
            StockLevel(
                sku=row["item_code"], name=items.get(row["item_code"], {}).get("item_name") or row["item_code"],
                warehouse=row["warehouse"], warehouse_name=names.get(row["warehouse"], row["warehouse"]),
                quantity=dec(row.get("actual_qty")), reserved=dec(row.get("reserved_qty")),
                safety_level=dec(items.get(row["item_code"], {}).get("safety_stock")),
                unit=row.get("stock_uom") or "", forecast=dec(row.get("projected_qty")),
            )
            for row in bins
        ]

    def sales_orders(self, *, since: dt.datetime | None = None) -> list[SalesOrder]:
        filters: list = [["docstatus", "=", 1]]
        if since:
            filters.append(["modified", ">=", self.frappe_time(since)])
        rows = self.client.get_list("Sales Order", ["name", "customer", "status", "grand_total", "currency",
                                                    "transaction_date", "delivery_date", "modified"], filters,
                                    order_by="modified asc")
        return [
            SalesOrder(
                id=row["name"], customer=row.get("customer") or "", status=row.get("status") or "",
                amount=dec(row.get("grand_total")), currency=row.get("currency") or "",
                order_date=dt.date.fromisoformat(row["transaction_date"]) if row.get("transaction_date") else None,
                delivery_date=dt.date.fromisoformat(row["delivery_date"]) if row.get("delivery_date") else None,
                changed_at=self.parse_time(row.get("modified")),
            )
            for row in rows
        ]

    def receivables(
        self, *, customer: str = "", project: str = "", open_only: bool = True, since: dt.datetime | None = None
    ) -> list[Receivable]:
        """Submitted Sales Invoices: ``outstanding_amount``, ``due_date``, customer and project."""
        filters: list = [["docstatus", "=", 1], ["is_return", "=", 0]]
        if open_only:
            filters.append(["outstanding_amount", ">", 0])
        if customer:
            filters.append(["customer", "=", customer])
        if project:
            filters.append(["project", "=", project])
        if since:
            filters.append(["modified", ">=", self.frappe_time(since)])
        fields = ["name", "customer", "project", "grand_total", "outstanding_amount", "currency", "due_date",
                  "modified"]
        rows = self.client.get_list("Sales Invoice", fields, filters, order_by="due_date asc")
        return [
            Receivable(
                id=row["name"], customer=row.get("customer") or "", project=row.get("project") or "",
                amount=dec(row.get("grand_total")),
                paid=dec(row.get("grand_total")) - dec(row.get("outstanding_amount")),
                currency=row.get("currency") or "",
                due_date=dt.date.fromisoformat(row["due_date"]) if row.get("due_date") else None,
                changed_at=self.parse_time(row.get("modified")),
            )
            for row in rows
        ]

    def changes(self, since: dt.datetime | None) -> ChangeSet:
        after = [["modified", ">=", self.frappe_time(since)]] if since else []
        changes: list[Change] = []
        for doctype in self.options.doctypes:
            for row in self.client.get_list(doctype, ["name", "docstatus", "modified"], after, order_by="modified asc"):
                changes.append(Change("document", row["name"], self.parse_time(row["modified"]),  # type: ignore[arg-type]
                                      str(row.get("docstatus", ""))))
        for doctype, kind in (("Sales Order", "order"), ("Sales Invoice", "receivable")):
            for row in self.client.get_list(doctype, ["name", "status", "modified"], [["docstatus", "=", 1], *after],
                                            order_by="modified asc"):
                changes.append(Change(kind, row["name"], self.parse_time(row["modified"]),  # type: ignore[arg-type]
                                      row.get("status") or ""))
        for row in self.client.get_list("Bin", ["item_code", "modified"], after, order_by="modified asc"):
            changes.append(Change("stock", row["item_code"], self.parse_time(row["modified"])))  # type: ignore[arg-type]
        return ChangeSet(changes, max((c.changed_at for c in changes), default=since))

    def users(self) -> list[ErpUser]:
        """System users with their roles (one read per user: Has Role is a child table)."""
        rows = self.client.get_list("User", ["name", "full_name", "email", "enabled"],
                                    [["user_type", "=", "System User"]], order_by="name asc")
        users = []
        for row in rows:
            if row["name"] in {"Administrator", "Guest"}:
                continue
            doc = self.client.get_doc("User", row["name"]) or {}
            users.append(ErpUser(
                login=row["name"], name=row.get("full_name") or "", email=row.get("email") or "",
                roles=tuple(sorted(r["role"] for r in doc.get("roles") or [] if r.get("role"))),
                active=bool(row.get("enabled", 1)),
            ))
        return users

    # --- test connection ------------------------------------------------------------------

    def me(self) -> str:
        if self._me is None:
            self._me = str(self.client.method("frappe.auth.get_logged_user", http="GET"))
        return self._me

    def test_connection(self) -> list[ConnectionCheck]:
        try:
            user = self.me()
        except ConnectorError as exc:
            return [ConnectionCheck(_("log in"), False, str(exc))]
        checks = [ConnectionCheck(_("log in"), True, user)]
        reads = [(doctype, _("read %(doctype)s") % {"doctype": doctype}, "documents")
                 for doctype in self.options.doctypes]
        reads += [("Bin", _("read stock"), STOCK), ("Sales Order", _("read sales orders"), SALES_ORDERS),
                  ("Sales Invoice", _("read receivables"), RECEIVABLES), ("User", _("read users and roles"), "users")]
        for doctype, label, capability in reads:
            try:
                self.client.get_list(doctype, ["name"], limit=1)
                checks.append(ConnectionCheck(label, True, capability=capability))
            except ConnectorError as exc:
                checks.append(ConnectionCheck(label, False, str(exc), capability))
        try:
            roles = {r["role"] for r in (self.client.get_doc("User", user) or {}).get("roles") or []}
            for doctype in self.options.doctypes:
                workflow = self.workflow(doctype)
                label = _("approve %(doctype)s") % {"doctype": doctype}
                if workflow is None:
                    checks.append(ConnectionCheck(label, False, _("no active workflow"), "decide"))
                    continue
                allowed = {t["allowed"] for t in workflow.get("transitions") or []
                           if t.get("action") in self.options.actions.values()}
                ok = bool(allowed & roles)
                detail = "" if ok else _("the account has none of the roles %(roles)s") % {
                    "roles": ", ".join(sorted(allowed))}
                checks.append(ConnectionCheck(label, ok, detail, "decide"))
        except ConnectorError as exc:
            checks.append(ConnectionCheck(_("approve"), False, str(exc), "decide"))
        return checks
