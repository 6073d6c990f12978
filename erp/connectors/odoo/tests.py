"""The Odoo connector against an in-process Odoo stand-in (httpx.MockTransport) that answers with the
recorded JSON-RPC shapes in fixtures/ (see fixtures/README.md for where each shape comes from) and
keeps the little state a decision changes (the order's state, its chatter notes)."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import translation

from erp.connectors.base import (
    RECEIVABLES,
    STOCK,
    ConnectorError,
    DecisionConflict,
    supports,
)

from . import client as client_module
from .client import OdooClient, error_from_body
from .connector import OdooConnector

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def result(name: str) -> Any:
    return recorded(name)["response"]["result"]


class FakeOdoo:
    """Answers ``/jsonrpc`` like Odoo 17: recorded results, plus the state a decision changes."""

    API_KEY = "<api key>"

    def __init__(self) -> None:
        self.order = dict(result("purchase_order_search_read")[0])
        self.messages: list[dict[str, Any]] = []
        self.groups = list(result("res_users_read_groups")[0]["groups_id"])
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], str] = {}  # (model, method) -> recorded error answer
        self.on_call: dict[tuple[str, str], Any] = {}  # side effects before answering
        users = result("res_users_search_read")
        self.logins = {row["id"]: row["login"] for row in users}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def recorded_answer(self, name: str, args: list[Any]) -> Any:
        """A recorded answer, after checking that we sent the request the fixture records."""
        expected = recorded(name)["request"]["params"]["args"]
        assert args[3:] == expected[3:], f"{name}: sent {args[3:]}, recorded {expected[3:]}"
        return result(name)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/jsonrpc"
        body = json.loads(request.content)
        assert (body["jsonrpc"], body["method"]) == ("2.0", "call")
        service, method, args = body["params"]["service"], body["params"]["method"], body["params"]["args"]
        if service == "common":
            if method == "version":
                return httpx.Response(200, json=recorded("version")["response"])
            assert method == "authenticate" and args[0] == "odoo"
            name = "authenticate" if args[2] == self.API_KEY else "authenticate_refused"
            return httpx.Response(200, json=recorded(name)["response"])
        assert (service, method) == ("object", "execute_kw")
        if args[2] != self.API_KEY:
            return httpx.Response(200, json=recorded("error_access_denied")["response"])
        model, model_method = args[3], args[4]
        self.calls.append((model, model_method))
        if (model, model_method) in self.on_call:
            self.on_call[(model, model_method)]()
        if (model, model_method) in self.fail:
            return httpx.Response(200, json=recorded(self.fail[(model, model_method)])["response"])
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": self.answer(args)})

    def answer(self, args: list[Any]) -> Any:
        model, method, margs, kwargs = args[3], args[4], args[5], args[6]
        key = (model, method)
        if key == ("purchase.order", "search_read"):
            domain = margs[0]
            if domain and domain[0][0] == "name" and domain[0][2] != self.order["name"]:
                return []
            return [self.order]
        if key == ("purchase.order", "message_post"):
            assert margs == [[self.order["id"]]] and kwargs["subtype_xmlid"] == "mail.mt_note"
            self.post(kwargs["body"])
            return self.messages[-1]["id"]
        if key == ("purchase.order", "button_approve"):
            self.order.update(state="purchase", date_approve="2026-03-02 09:00:06", write_uid=[2, "李四"],
                              write_date="2026-03-02 09:00:06")
            return {}
        if key == ("purchase.order", "button_cancel"):
            self.order.update(state="cancel", write_uid=[2, "李四"], write_date="2026-03-02 09:00:06")
            return None
        if key == ("mail.message", "search_read"):
            needle = margs[0][2][2].lower()
            return [m for m in self.messages if needle in html.unescape(m["body"]).lower()]
        if key == ("res.users", "read"):
            if kwargs["fields"] == ["groups_id"]:
                return [{"id": margs[0][0], "groups_id": self.groups}]
            return [{"id": uid, "login": self.logins[uid]} for uid in margs[0]]
        if key == ("res.users", "search_read"):
            name = "res_users_approvers" if margs[0][0][0] == "groups_id" else "res_users_search_read"
            return self.recorded_answer(name, args)
        if key == ("product.product", "read"):
            name = "product_read_stock" if "uom_id" in kwargs["fields"] else "product_read"
            return self.recorded_answer(name, args)
        if key == ("stock.quant", "search_read"):  # changes(): quants written since the cursor
            return [{"id": 1, "product_id": [31, "[SKU-123] 伺服电机"], "write_date": "2026-03-02 07:00:00"}]
        if method == "check_access_rights":
            return True
        recorded_for = {
            ("purchase.order.line", "search_read"): "purchase_order_line_search_read",
            ("ir.model.data", "search_read"): "ir_model_data_group",
            ("stock.quant", "read_group"): "stock_quant_read_group",
            ("stock.location", "read"): "stock_location_read",
            ("stock.warehouse", "search_read"): "stock_warehouse_search_read",
            ("stock.warehouse.orderpoint", "search_read"): "orderpoint_search_read",
            ("res.groups", "search_read"): "res_groups_search_read",
        }
        if key in recorded_for:
            return self.recorded_answer(recorded_for[key], args)
        if key == ("account.move", "search_read"):
            return result("account_move_search_read")
        if key == ("sale.order", "search_read"):
            return result("sale_order_search_read")
        raise AssertionError(f"unexpected call {key}")

    def post(self, text: str) -> None:
        # Odoo escapes a plain-text body and keeps it as HTML (recorded in mail_message_search_read).
        self.messages.append({"id": 880 + len(self.messages), "date": "2026-03-02 09:00:05",
                              "body": "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"})


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Messages are asserted in English here (the portal's default language is zh-Hans)."""
    with translation.override("en"):
        yield


@pytest.fixture
def odoo() -> FakeOdoo:
    return FakeOdoo()


def connector(fake: FakeOdoo, key: str = FakeOdoo.API_KEY) -> OdooConnector:
    return OdooConnector(client=OdooClient("https://odoo.invalid", "odoo", "li.si@example.com", key,
                                           transport=fake.transport()))


def test_read_purchase_order(odoo: FakeOdoo) -> None:
    snapshot = connector(odoo).read_document("P00042")
    assert snapshot is not None
    assert (snapshot.id, snapshot.kind, snapshot.state) == ("P00042", "purchase_order", "pending")
    assert (snapshot.amount, snapshot.currency, snapshot.requester) == (Decimal("12800.0"), "CNY", "zhang.san")
    assert "华东机电有限公司" in snapshot.title
    assert snapshot.approvers == ["li.si"]
    [line] = snapshot.lines
    assert (line.sku, line.name, line.qty, line.unit_price) == ("SKU-123", "[SKU-123] 伺服电机", Decimal("4.0"),
                                                                Decimal("3200.0"))
    assert connector(odoo).read_document("P99999") is None


def test_approve_writes_the_note_first_and_replays(odoo: FakeOdoo) -> None:
    first = connector(odoo).decide("P00042", "approved", actor="li.si", comment="同意", idempotency_key="k-1")
    assert (first.outcome, first.decided_by, first.replayed) == ("approved", "li.si", False)
    assert first.decided_at == dt.datetime(2026, 3, 2, 9, 0, 5, tzinfo=dt.UTC)
    assert first.erp_reference == "purchase.order,42"
    assert odoo.order["state"] == "purchase"
    assert odoo.calls.index(("purchase.order", "message_post")) < odoo.calls.index(("purchase.order", "button_approve"))
    # The stored note reads back exactly as the recorded chatter message does.
    assert odoo.messages[0]["body"] == result("mail_message_search_read")[0]["body"]

    odoo.calls.clear()
    again = connector(odoo).decide("P00042", "approved", actor="li.si", comment="同意", idempotency_key="k-1")
    assert again.replayed is True and again.decided_at == first.decided_at
    assert ("purchase.order", "message_post") not in odoo.calls
    assert ("purchase.order", "button_approve") not in odoo.calls


def test_retry_after_a_crash_between_note_and_button_presses_once(odoo: FakeOdoo) -> None:
    odoo.post("portal-decision key=k-2 outcome=rejected actor=li.si")
    result_ = connector(odoo).decide("P00042", "rejected", actor="li.si", comment="", idempotency_key="k-2")
    assert (result_.outcome, result_.replayed) == ("rejected", False)
    assert odoo.order["state"] == "cancel"
    assert len(odoo.messages) == 1
    with pytest.raises(ConnectorError, match="was used to rejected"):
        connector(odoo).decide("P00042", "approved", actor="li.si", comment="", idempotency_key="k-2")


def test_decided_in_odoo_is_a_conflict(odoo: FakeOdoo) -> None:
    odoo.order.update(state="purchase", date_approve="2026-03-02 08:45:00", write_uid=[2, "李四"])
    with pytest.raises(DecisionConflict) as caught:
        connector(odoo).decide("P00042", "rejected", actor="li.si", comment="", idempotency_key="k-3")
    assert (caught.value.outcome, caught.value.decided_by) == ("approved", "li.si")
    assert caught.value.decided_at == dt.datetime(2026, 3, 2, 8, 45, tzinfo=dt.UTC)
    assert odoo.messages == []


def test_decided_between_read_and_button_is_a_conflict(odoo: FakeOdoo) -> None:
    """Someone approved in Odoo while we wrote our note: button_cancel's UserError becomes a conflict."""
    odoo.on_call[("purchase.order", "button_cancel")] = lambda: odoo.order.update(state="purchase")
    odoo.fail[("purchase.order", "button_cancel")] = "error_user_error"
    with pytest.raises(DecisionConflict) as caught:
        connector(odoo).decide("P00042", "rejected", actor="li.si", comment="", idempotency_key="k-4")
    assert caught.value.outcome == "approved"


def test_account_without_the_approver_group_fails_before_writing(odoo: FakeOdoo) -> None:
    odoo.groups = [1, 17]
    with pytest.raises(ConnectorError, match="Purchase / Administrator") as caught:
        connector(odoo).decide("P00042", "approved", actor="li.si", comment="", idempotency_key="k-5")
    assert caught.value.permanent is True
    assert odoo.messages == [] and odoo.order["state"] == "to approve"


def test_access_error_on_the_button_is_permanent(odoo: FakeOdoo) -> None:
    odoo.fail[("purchase.order", "button_approve")] = "error_access_error"
    with pytest.raises(ConnectorError, match="may not approve") as caught:
        connector(odoo).decide("P00042", "approved", actor="li.si", comment="", idempotency_key="k-6")
    assert caught.value.permanent is True


def test_a_serialization_failure_is_retried(odoo: FakeOdoo) -> None:
    odoo.fail[("purchase.order", "button_approve")] = "error_serialization"
    with pytest.raises(ConnectorError) as caught:
        connector(odoo).decide("P00042", "approved", actor="li.si", comment="", idempotency_key="k-7")
    assert caught.value.permanent is False
    del odoo.fail[("purchase.order", "button_approve")]
    done = connector(odoo).decide("P00042", "approved", actor="li.si", comment="", idempotency_key="k-7")
    assert (done.replayed, len(odoo.messages)) == (False, 1)  # the retry found its note and pressed once


def test_error_shapes_are_classified(odoo: FakeOdoo) -> None:
    for name, kind, permanent in (
        ("error_access_error", "odoo.exceptions.AccessError", True),
        ("error_user_error", "odoo.exceptions.UserError", True),
        ("error_access_denied", "odoo.exceptions.AccessDenied", True),
        ("error_serialization", "psycopg2.errors.SerializationFailure", False),
    ):
        error = error_from_body(recorded(name)["response"]["error"])
        assert (error.kind, error.permanent) == (kind, permanent), name
    assert "You are not allowed to modify" in str(error_from_body(recorded("error_access_error")["response"]["error"]))
    with pytest.raises(ConnectorError, match="wrong login or API key") as refused:
        connector(odoo, key="wrong").client.authenticate()
    assert refused.value.permanent is True
    for status, permanent in ((502, False), (429, False), (404, True), (403, True)):
        down = OdooClient("https://odoo.invalid", "odoo", "x", "y",
                          transport=httpx.MockTransport(lambda request, s=status: httpx.Response(s, text="no")))
        with pytest.raises(ConnectorError) as caught:
            down.version()
        assert caught.value.permanent is permanent, status

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ConnectorError) as caught:
        OdooClient("https://odoo.invalid", "odoo", "x", "y", transport=httpx.MockTransport(unreachable)).version()
    assert caught.value.permanent is False


def test_stock_by_product_and_warehouse(odoo: FakeOdoo) -> None:
    erp = connector(odoo)
    assert supports(erp, STOCK) and supports(erp, RECEIVABLES)
    levels = {(s.sku, s.warehouse): s for s in erp.stock()}
    assert set(levels) == {("SKU-123", "SH"), ("SKU-123", "BJ")}  # the product without a code is left out
    sh = levels[("SKU-123", "SH")]
    assert (sh.quantity, sh.reserved, sh.safety_level, sh.warehouse_name, sh.unit) == (
        Decimal("15.0"), Decimal("2.0"), Decimal("10.0"), "上海仓", "Units")
    assert levels[("SKU-123", "BJ")].quantity == Decimal("3.0")
    assert [s.warehouse for s in connector(odoo).stock(warehouses=["BJ"])] == ["BJ"]


def test_receivables_orders_users_and_changes(odoo: FakeOdoo) -> None:
    [invoice] = connector(odoo).receivables()
    assert (invoice.id, invoice.customer, invoice.amount, invoice.paid, invoice.outstanding) == (
        "INV/2026/00012", "华东机械", Decimal("120000.0"), Decimal("50000.0"), Decimal("70000.0"))
    assert (invoice.due_date, invoice.sales_rep, invoice.project) == (dt.date(2026, 2, 28), "zhang.san", "")
    assert connector(odoo).receivables(project="项目A") == []  # Odoo invoices carry no project
    [order] = connector(odoo).sales_orders()
    assert (order.id, order.status, order.delivery_date, order.sales_rep) == ("S00012", "sale", dt.date(2026, 3, 9),
                                                                              "zhang.san")
    users = {u.login: u for u in connector(odoo).users()}
    assert "Purchase / Administrator" in users["li.si"].roles
    assert "Purchase / Administrator" not in users["zhang.san"].roles
    assert users["wang.wu"].active is False
    since = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    changes = connector(odoo).changes(since)
    assert {(c.kind, c.id) for c in changes.changes} == {
        ("document", "P00042"), ("order", "S00012"), ("receivable", "INV/2026/00012"), ("stock", "SKU-123")}
    assert changes.cursor == dt.datetime(2026, 3, 2, 8, 31, 12, tzinfo=dt.UTC)


@translation.override("en")
def test_connection_checks_name_each_capability(odoo: FakeOdoo) -> None:
    checks = connector(odoo).test_connection()
    assert all(check.ok for check in checks), checks
    assert {check.capability for check in checks} >= {"documents", "decide", "stock", "receivables", "users"}
    assert "Odoo 17.0" in checks[0].detail
    odoo.groups = [1]
    failing = {check.name: check for check in connector(odoo).test_connection()}
    assert failing["approve and cancel purchase orders"].ok is False
    assert connector(odoo, key="wrong").test_connection()[0].ok is False


@pytest.mark.django_db
def test_configured_in_admin_with_an_encrypted_key(odoo: FakeOdoo, monkeypatch: pytest.MonkeyPatch,
                                                   admin_client) -> None:
    from erp.connectors import get_connector
    from erp.models import Connector, ConnectorSettings

    monkeypatch.setattr(client_module, "default_transport", odoo.transport())
    row = Connector.objects.create(slug="odoo", name="Odoo", kind="odoo")
    response = admin_client.post(f"/admin/erp/connector/{row.pk}/change/", {
        "slug": "odoo", "name": "Odoo", "kind": "odoo", "enabled": "on", "webhook_secret": row.webhook_secret,
        "settings-TOTAL_FORMS": "1", "settings-INITIAL_FORMS": "0", "settings-MIN_NUM_FORMS": "0",
        "settings-MAX_NUM_FORMS": "1", "settings-0-base_url": "https://odoo.invalid", "settings-0-database": "odoo",
        "settings-0-login": "li.si@example.com", "settings-0-password": FakeOdoo.API_KEY,
        "settings-0-poll_interval": "60", "settings-0-options": "{}",
    })
    assert response.status_code == 302, response.content.decode()[-3000:]
    settings = ConnectorSettings.objects.get(connector=row)
    assert FakeOdoo.API_KEY not in settings.password_encrypted and settings.get_password() == FakeOdoo.API_KEY
    assert isinstance(get_connector("odoo", row), OdooConnector)
    response = admin_client.post(
        "/admin/erp/connector/", {"action": "test_connection", "_selected_action": [row.pk]}, follow=True)
    text = response.content.decode()
    assert "✓ 登录" in text and "✓ 读取库存" in text, text[-3000:]
