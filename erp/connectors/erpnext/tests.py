"""The ERPNext connector against an in-process Frappe stand-in (httpx.MockTransport) answering with the
recorded REST shapes in fixtures/ (sources in fixtures/README.md), keeping the state a decision changes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from django.utils import translation

from erp.connectors.base import ConnectorError, DecisionConflict

from .client import FrappeClient, error_from_response, server_messages
from .connector import ErpNextConnector, parse_options

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "token 4f1a2b3c4d5e6f7:9a8b7c6d5e4f3a2"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def answer(name: str) -> httpx.Response:
    fixture = recorded(name)
    return httpx.Response(fixture["status"], json=fixture["response"])


class FakeFrappe:
    def __init__(self) -> None:
        self.po = dict(recorded("purchase_order")["response"]["data"])
        self.comments: list[dict[str, Any]] = []
        self.roles = [r["role"] for r in recorded("user_doc")["response"]["data"]["roles"]]
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], str] = {}
        self.on_call: dict[tuple[str, str], Any] = {}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        key = (request.method, path)
        self.calls.append(key)
        if request.headers.get("Authorization") != TOKEN:
            return answer("error_authentication")
        if key in self.on_call:
            self.on_call[key]()
        if key in self.fail:
            return answer(self.fail[key])
        params = {k: json.loads(v) if k in {"fields", "filters"} else v for k, v in request.url.params.items()}
        if key == ("GET", "/api/method/frappe.auth.get_logged_user"):
            return answer("get_logged_user")
        if key == ("GET", f"/api/resource/Purchase Order/{self.po['name']}"):
            return httpx.Response(200, json={"data": self.po})
        if key == ("GET", "/api/resource/Expense Claim/HR-EXP-2026-00007"):
            return answer("expense_claim")
        if path.startswith(("/api/resource/Purchase Order/", "/api/resource/Expense Claim/")):
            return answer("not_found")
        if key == ("GET", "/api/resource/Workflow"):
            expected = recorded("workflow_list")["request"]["params"]
            if params["filters"][0][2] != "Purchase Order":
                return httpx.Response(200, json={"data": []})
            assert params["filters"] == json.loads(expected["filters"])
            return answer("workflow_list")
        if key == ("GET", "/api/resource/Workflow/Purchase Order Approval"):
            return answer("workflow")
        if key == ("GET", "/api/resource/User"):
            if any(f[0] == "Has Role" for f in params.get("filters", [])):
                assert ["Has Role", "role", "=", "Purchase Manager"] in params["filters"]
                return answer("users_with_role")
            return answer("user_list")
        if key == ("GET", "/api/resource/User/li.si@example.com"):
            doc = recorded("user_doc")["response"]["data"]
            return httpx.Response(200, json={"data": {**doc, "roles": [{"role": r} for r in self.roles]}})
        if path.startswith("/api/resource/User/"):
            return httpx.Response(200, json={"data": {"name": path.rsplit("/", 1)[1], "roles": []}})
        if key == ("GET", "/api/resource/Comment"):
            like = next(f[2] for f in params["filters"] if f[0] == "content").strip("%")
            return httpx.Response(200, json={"data": [c for c in self.comments if like in c["content"]]})
        if key == ("POST", "/api/resource/Comment"):
            doc = json.loads(request.content)
            assert doc["comment_type"] == "Comment" and doc["reference_doctype"] == "Purchase Order"
            self.comments.append({"name": f"c{len(self.comments)}", "content": doc["content"],
                                  "creation": "2026-03-02 17:00:05.123456"})
            return httpx.Response(200, json={"data": {**doc, "name": self.comments[-1]["name"]}})
        if key == ("POST", "/api/method/frappe.model.workflow.apply_workflow"):
            body = json.loads(request.content)
            assert body["doc"]["name"] == self.po["name"] and body["action"] in {"Approve", "Reject"}
            if body["action"] == "Approve":
                approved = recorded("apply_workflow")["response"]["message"]
                self.po.update(docstatus=1, workflow_state="Approved", modified=approved["modified"],
                               modified_by=approved["modified_by"], status=approved["status"])
            else:
                self.po.update(workflow_state="Rejected", modified="2026-03-02 17:00:06.000000",
                               modified_by="li.si@example.com")
            return httpx.Response(200, json={"message": self.po})
        lists = {"Bin": "bin_list", "Item": "item_list", "Warehouse": "warehouse_list",
                 "Sales Invoice": "sales_invoice_list", "Sales Order": "sales_order_list"}
        doctype = path.removeprefix("/api/resource/")
        if request.method == "GET" and doctype in lists:
            return answer(lists[doctype])
        if request.method == "GET" and doctype == "Purchase Order":  # changes(): the list since the cursor
            return httpx.Response(200, json={"data": [{k: self.po[k] for k in ("name", "docstatus", "modified")}]})
        if request.method == "GET" and doctype == "Expense Claim":
            return httpx.Response(200, json={"data": []})
        raise AssertionError(f"unexpected call {key}")


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages are asserted in English here (the portal's default language is zh-Hans)."""
    with translation.override("en"):
        yield


@pytest.fixture
def frappe() -> FakeFrappe:
    return FakeFrappe()


SECRET = "9a8b7c6d5e4f3a2"


def connector(fake: FakeFrappe, options: dict | None = None, secret: str = SECRET) -> ErpNextConnector:
    client = FrappeClient("https://erp.invalid", "4f1a2b3c4d5e6f7", secret, transport=fake.transport())
    return ErpNextConnector(client=client, options={"time_zone": "Asia/Shanghai", **(options or {})})


def test_read_purchase_order(frappe: FakeFrappe) -> None:
    snapshot = connector(frappe).read_document("PUR-ORD-2026-00042")
    assert snapshot is not None
    assert (snapshot.kind, snapshot.state, snapshot.amount, snapshot.currency) == (
        "purchase_order", "pending", Decimal("12800.0"), "CNY")
    assert (snapshot.requester, snapshot.project) == ("zhang.san@example.com", "项目A")
    assert snapshot.approvers == ["li.si@example.com"]  # holders of the role of the Approve transition
    [line] = snapshot.lines
    assert (line.sku, line.name, line.qty, line.unit_price) == ("SKU-123", "伺服电机", Decimal("4.0"),
                                                                Decimal("3200.0"))
    assert connector(frappe).read_document("PUR-ORD-2026-99999") is None


def test_read_expense_claim_after_the_purchase_order_404(frappe: FakeFrappe) -> None:
    snapshot = connector(frappe).read_document("HR-EXP-2026-00007")
    assert snapshot is not None
    assert (snapshot.kind, snapshot.amount, snapshot.approvers, snapshot.project) == (
        "expense_claim", Decimal("860.0"), ["li.si@example.com"], "项目A")
    assert snapshot.lines[0].name == "高铁 上海—北京"


def test_approve_comments_first_then_applies_the_workflow_once(frappe: FakeFrappe) -> None:
    first = connector(frappe).decide("PUR-ORD-2026-00042", "approved", actor="li.si", comment="同意",
                                     idempotency_key="k-1")
    assert (first.outcome, first.decided_by, first.replayed) == ("approved", "li.si", False)
    assert first.decided_at == dt.datetime(2026, 3, 2, 9, 0, 5, 123456, tzinfo=dt.UTC)  # Shanghai → UTC
    assert frappe.po["workflow_state"] == "Approved"
    assert frappe.comments[0]["content"] == recorded("comments")["response"]["data"][0]["content"]
    apply = ("POST", "/api/method/frappe.model.workflow.apply_workflow")
    assert frappe.calls.index(("POST", "/api/resource/Comment")) < frappe.calls.index(apply)

    frappe.calls.clear()
    again = connector(frappe).decide("PUR-ORD-2026-00042", "approved", actor="li.si", comment="同意",
                                     idempotency_key="k-1")
    assert again.replayed is True and again.decided_at == first.decided_at
    assert apply not in frappe.calls and ("POST", "/api/resource/Comment") not in frappe.calls


def test_decided_in_erpnext_is_a_conflict(frappe: FakeFrappe) -> None:
    frappe.po.update(workflow_state="Rejected", modified_by="li.si@example.com", modified="2026-03-02 16:45:00.000000")
    with pytest.raises(DecisionConflict) as caught:
        connector(frappe).decide("PUR-ORD-2026-00042", "approved", actor="li.si", comment="", idempotency_key="k-2")
    assert (caught.value.outcome, caught.value.decided_by) == ("rejected", "li.si@example.com")
    assert caught.value.decided_at == dt.datetime(2026, 3, 2, 8, 45, tzinfo=dt.UTC)
    assert frappe.comments == []


def test_an_action_the_roles_do_not_allow_is_permanent(frappe: FakeFrappe) -> None:
    frappe.fail[("POST", "/api/method/frappe.model.workflow.apply_workflow")] = "error_workflow_transition"
    with pytest.raises(ConnectorError, match="Not a valid Workflow Action") as caught:
        connector(frappe).decide("PUR-ORD-2026-00042", "rejected", actor="li.si", comment="", idempotency_key="k-3")
    assert caught.value.permanent is True
    assert "may not “Reject”" in str(caught.value)


def test_decided_meanwhile_turns_the_refusal_into_a_conflict(frappe: FakeFrappe) -> None:
    apply = ("POST", "/api/method/frappe.model.workflow.apply_workflow")
    frappe.on_call[apply] = lambda: frappe.po.update(workflow_state="Approved", modified_by="wang.wu@example.com")
    frappe.fail[apply] = "error_workflow_transition"
    with pytest.raises(DecisionConflict) as caught:
        connector(frappe).decide("PUR-ORD-2026-00042", "rejected", actor="li.si", comment="", idempotency_key="k-4")
    assert (caught.value.outcome, caught.value.decided_by) == ("approved", "wang.wu@example.com")


def test_a_timestamp_mismatch_is_retried_and_applies_once(frappe: FakeFrappe) -> None:
    apply = ("POST", "/api/method/frappe.model.workflow.apply_workflow")
    frappe.fail[apply] = "error_timestamp_mismatch"
    with pytest.raises(ConnectorError) as caught:
        connector(frappe).decide("PUR-ORD-2026-00042", "approved", actor="li.si", comment="", idempotency_key="k-5")
    assert caught.value.permanent is False
    del frappe.fail[apply]
    done = connector(frappe).decide("PUR-ORD-2026-00042", "approved", actor="li.si", comment="", idempotency_key="k-5")
    assert (done.replayed, len(frappe.comments), frappe.po["workflow_state"]) == (False, 1, "Approved")


def test_error_shapes_are_classified() -> None:
    for name, kind, permanent in (
        ("error_workflow_transition", "WorkflowTransitionError", True),
        ("error_self_approval", "ValidationError", True),
        ("error_permission", "PermissionError", True),
        ("error_timestamp_mismatch", "TimestampMismatchError", False),
        ("error_duplicate", "DuplicateEntryError", True),
        ("error_authentication", "AuthenticationError", True),
        ("not_found", "DoesNotExistError", True),
    ):
        fixture = recorded(name)
        error = error_from_response(fixture["status"], fixture["response"])
        assert (error.kind, error.permanent) == (kind, permanent), name
    assert server_messages(recorded("error_permission")["response"]) == ["Insufficient Permission for Sales Invoice"]
    assert error_from_response(502, {}).permanent is False
    assert error_from_response(500, {"exc_type": "QueryDeadlockError"}).permanent is False


def test_wrong_secret_is_a_failed_check(frappe: FakeFrappe) -> None:
    [check] = connector(frappe, secret="nope").test_connection()
    assert check.ok is False and "AuthenticationError" in check.detail


def test_stock_receivables_orders_users_and_changes(frappe: FakeFrappe) -> None:
    erp = connector(frappe)
    levels = {(s.sku, s.warehouse): s for s in erp.stock(skus=["SKU-123"])}
    stores = levels[("SKU-123", "Stores - DC")]
    assert (stores.quantity, stores.reserved, stores.safety_level, stores.warehouse_name, stores.name) == (
        Decimal("12.0"), Decimal("2.0"), Decimal("10.0"), "Stores", "伺服电机")
    [invoice] = erp.receivables(project="项目A")
    assert (invoice.customer, invoice.outstanding, invoice.paid, invoice.due_date) == (
        "华东机械", Decimal("70000.0"), Decimal("50000.0"), dt.date(2026, 2, 28))
    [order] = erp.sales_orders(since=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    assert (order.status, order.delivery_date) == ("To Deliver and Bill", dt.date(2026, 3, 9))
    users = {u.login: u for u in erp.users()}
    assert set(users) == {"li.si@example.com", "wang.wu@example.com"}
    assert "Purchase Manager" in users["li.si@example.com"].roles and users["wang.wu@example.com"].active is False
    changes = erp.changes(None)
    assert {c.kind for c in changes.changes} == {"document", "order", "receivable", "stock"}
    assert changes.cursor == dt.datetime(2026, 3, 2, 8, 31, 12, 482114, tzinfo=dt.UTC)


@translation.override("en")
def test_connection_checks(frappe: FakeFrappe) -> None:
    checks = {c.name: c for c in connector(frappe).test_connection()}
    assert checks["log in"].detail == "li.si@example.com"
    assert checks["approve Purchase Order"].ok is True
    assert checks["approve Expense Claim"].ok is False  # no workflow on Expense Claim in the stand-in
    frappe.fail[("GET", "/api/resource/Sales Invoice")] = "error_permission"
    frappe.roles = ["Purchase User"]
    checks = {c.name: c for c in connector(frappe).test_connection()}
    assert checks["read receivables"].ok is False and "Insufficient Permission" in checks["read receivables"].detail
    assert checks["approve Purchase Order"].ok is False


@translation.override("en")
def test_options_are_validated_with_clear_messages() -> None:
    assert parse_options({}).actions == {"approved": "Approve", "rejected": "Reject"}
    assert parse_options({"doctypes": ["Expense Claim"]}).doctypes == ("Expense Claim",)
    for raw, message in (
        ([], "must be a JSON object"),
        ({"doctype": ["Purchase Order"]}, r"Unknown ERPNext option\(s\): doctype"),
        ({"doctypes": ["Sales Order"]}, "Unsupported document type “Sales Order”"),
        ({"actions": {"approved": "Approve"}}, "“actions” must name"),
        ({"time_zone": "Mars/Base"}, "Unknown time zone"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_options(raw)
