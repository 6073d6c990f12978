"""The Tryton connector against a running Tryton (see conftest.py), plus offline parsing tests
against recorded JSON-RPC answers (fixtures/)."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from erp.connectors import get_connector
from erp.connectors.base import CHANGES, RECEIVABLES, ConnectorError, DecisionConflict, supports
from erp.models import Connector, ConnectorSettings, InboundEvent

from .admin import connection_report
from .client import TrytonClient, decode, error_from_body
from .connector import TrytonConnector, parse_note
from .poll import poll
from .seed_tryton import company_today
from .testing import TrytonServer

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.tryton


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


_sessions: dict[tuple[str, str], TrytonClient] = {}


def client(server: TrytonServer, login: str = "li.si", password: str | None = None) -> TrytonClient:
    """A logged-in client, one session per user and server (Tryton's password hashing is slow)."""
    if password is not None:
        return TrytonClient(server.base_url, server.database, login, password)
    key = (server.base_url, login)
    if key not in _sessions:
        _sessions[key] = TrytonClient(server.base_url, server.database, login, server.password)
    return _sessions[key]


def connector(server: TrytonServer, login: str = "li.si") -> TrytonConnector:
    return TrytonConnector(client=client(server, login), slug="tryton")


def new_requisition(server: TrytonServer, description: str = "备件", qty: int = 2, price: str = "880.50") -> str:
    """A requisition made and submitted by the requester, as in Tryton's own client."""
    requester = client(server, "zhang.san")
    seed = server.seed
    [req_id] = requester.model("purchase.requisition", "create", [{
        "description": description,
        "employee": seed["employees"]["zhang.san"],
        "supply_date": company_today() + dt.timedelta(days=3),
        "warehouse": seed["warehouses"]["SH"],
        "currency": seed["currency"],
        "lines": [["create", [{
            "product": seed["products"]["SKU-456"], "description": "导轨", "quantity": qty,
            "unit": seed["unit"], "unit_price": Decimal(price),
        }]]],
    }])
    requester.model("purchase.requisition", "wait", [req_id])
    [row] = requester.model("purchase.requisition", "read", [req_id], ["number"])
    return row["number"]


def tryton_state(server: TrytonServer, number: str) -> dict[str, Any]:
    approver = client(server)
    [row] = approver.search_read(
        "purchase.requisition", [("number", "=", number)], ["state", "write_date", "approved_by.party.name"]
    )
    row["notes"] = approver.search_read(
        "ir.note", [("resource", "=", f"purchase.requisition,{row['id']}")], ["message"]
    )
    return row


def configured(server: TrytonServer, login: str = "li.si", slug: str = "tryton") -> ConnectorSettings:
    row = Connector.objects.create(slug=slug, name="Tryton", kind="tryton")
    settings = ConnectorSettings(connector=row, base_url=server.base_url, database=server.database, login=login)
    settings.set_password(server.password)
    settings.save()
    return settings


# --- offline: recorded answers ------------------------------------------------------------------


def test_recorded_requisition_decodes_exactly() -> None:
    [row] = decode(recorded("requisition_search_read")["response"]["result"])
    assert row["total_amount"] == Decimal("12800.00")
    assert isinstance(row["write_date"], dt.datetime) and row["write_date"].tzinfo is None
    assert row["employee."]["party."]["name"] == "张三"
    [line] = decode(recorded("requisition_lines")["response"]["result"])
    assert line["unit_price"] == Decimal("3200")
    assert decode({"__class__": "date", "year": 2026, "month": 12, "day": 4}) == dt.date(2026, 12, 4)


def test_recorded_permission_error_is_permanent() -> None:
    error = error_from_body(recorded("approve_without_group")["response"]["error"])
    assert error.permanent is True
    assert error.kind == "UserError"
    assert 'Calling button "approve' in str(error)
    assert error_from_body(["DatabaseOperationalError", []]).permanent is False


def test_read_document_offline_from_recordings() -> None:
    """The whole read path over recorded answers (httpx.MockTransport), no Tryton needed."""
    answers = {
        "common.db.login": {"result": [2, "session", None]},
        "model.res.user.get_preferences": recorded("get_preferences")["response"],
        "model.purchase.requisition.search_read": recorded("requisition_search_read")["response"],
        "model.purchase.requisition.line.search_read": recorded("requisition_lines")["response"],
        "model.ir.model.button.search_read": recorded("approve_button")["response"],
        "model.res.user.search_read": {"result": [{"id": 2, "login": "li.si"}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        if method != "common.db.login":
            assert request.headers["Authorization"].startswith("Session ")
        return httpx.Response(200, json={"id": 1, **answers[method]})

    offline = TrytonClient("http://tryton.invalid", "db", "li.si", "x", transport=httpx.MockTransport(handler))
    snapshot = TrytonConnector(client=offline).read_document("1")
    assert snapshot is not None
    assert (snapshot.id, snapshot.title, snapshot.amount, snapshot.currency) == ("1", "紧急采购: 伺服电机",
                                                                                  Decimal("12800.00"), "CNY")
    assert snapshot.state == "approved"  # recorded after approval: Tryton moved it on to processing
    assert [(line.sku, line.qty, line.unit_price) for line in snapshot.lines] == [
        ("SKU-123", Decimal("4.0"), Decimal("3200"))]


def test_http_failures_are_classified() -> None:
    def answer(status: int) -> TrytonClient:
        transport = httpx.MockTransport(lambda request: httpx.Response(status, text="no"))
        return TrytonClient("http://tryton.invalid", "db", "li.si", "x", transport=transport)

    for status, permanent in ((429, False), (502, False), (503, False), (401, True), (404, True)):
        with pytest.raises(ConnectorError) as caught:
            answer(status).login()
        assert caught.value.permanent is permanent, status


def test_note_parsing() -> None:
    note = parse_note("portal-decision key=k-1 outcome=approved actor=li.si\n同意", "purchase.requisition,3",
                      dt.datetime(2026, 1, 1))
    assert note is not None and (note.key, note.outcome, note.actor) == ("k-1", "approved", "li.si")
    assert parse_note("a note someone typed", "x", dt.datetime(2026, 1, 1)) is None


# --- against the running Tryton ----------------------------------------------------------------


def test_read_requisition(tryton: TrytonServer) -> None:
    snapshot = connector(tryton).read_document(tryton.seed["requisition_number"])
    assert snapshot is not None
    assert (snapshot.kind, snapshot.title, snapshot.state) == ("purchase_requisition", "紧急采购: 伺服电机", "pending")
    assert (snapshot.amount, snapshot.currency, snapshot.requester) == (Decimal("12800.00"), "CNY", "zhang.san")
    assert snapshot.approvers == ["li.si"]
    [line] = snapshot.lines
    assert (line.sku, line.name, line.qty, line.unit_price) == ("SKU-123", "伺服电机", Decimal("4.0"), Decimal("3200"))
    assert connector(tryton).read_document("no-such-number") is None


def test_approve_writes_back_once_and_replays(tryton: TrytonServer) -> None:
    number = new_requisition(tryton)
    first = connector(tryton).decide(number, "approved", actor="li.si", comment="同意", idempotency_key="key-A1")
    assert (first.outcome, first.decided_by, first.replayed) == ("approved", "li.si", False)
    after = tryton_state(tryton, number)
    # Tryton moves an approved requisition straight on to processing (purchase requests made).
    assert after["state"] in {"approved", "processing"}
    assert after["approved_by."]["party."]["name"] == "李四"
    assert len(after["notes"]) == 1

    again = connector(tryton).decide(number, "approved", actor="li.si", comment="同意", idempotency_key="key-A1")
    assert again.replayed is True
    assert (again.outcome, again.decided_at, again.erp_reference) == (first.outcome, first.decided_at,
                                                                      first.erp_reference)
    replayed = tryton_state(tryton, number)
    assert (replayed["write_date"], len(replayed["notes"])) == (after["write_date"], 1)  # no second write


def test_retry_after_crash_between_note_and_button(tryton: TrytonServer) -> None:
    """The first attempt wrote its note and died before the button: the retry presses it, once."""
    number = new_requisition(tryton)
    approver = client(tryton)
    [row] = approver.search_read("purchase.requisition", [("number", "=", number)], ["id"])
    approver.model("ir.note", "create", [{"resource": f"purchase.requisition,{row['id']}",
                                           "message": "portal-decision key=key-C1 outcome=rejected actor=li.si"}])
    result = connector(tryton).decide(number, "rejected", actor="li.si", comment="", idempotency_key="key-C1")
    assert (result.outcome, result.replayed) == ("rejected", False)
    state = tryton_state(tryton, number)
    assert (state["state"], len(state["notes"])) == ("rejected", 1)


def test_decided_in_tryton_is_a_conflict(tryton: TrytonServer) -> None:
    number = new_requisition(tryton)
    approver = client(tryton)
    [row] = approver.search_read("purchase.requisition", [("number", "=", number)], ["id"])
    approver.model("purchase.requisition", "reject", [row["id"]])
    with pytest.raises(DecisionConflict) as caught:
        connector(tryton).decide(number, "approved", actor="li.si", comment="", idempotency_key="key-D1")
    assert (caught.value.outcome, caught.value.decided_by) == ("rejected", "李四")
    assert caught.value.decided_at is not None
    assert tryton_state(tryton, number)["notes"] == []


def test_second_key_after_a_decision_conflicts(tryton: TrytonServer) -> None:
    number = new_requisition(tryton)
    connector(tryton).decide(number, "approved", actor="li.si", comment="", idempotency_key="key-E1")
    with pytest.raises(DecisionConflict):
        connector(tryton).decide(number, "rejected", actor="li.si", comment="", idempotency_key="key-E2")


def test_account_without_approval_group_is_a_permanent_error(tryton: TrytonServer) -> None:
    number = new_requisition(tryton)
    with pytest.raises(ConnectorError) as caught:
        connector(tryton, "wang.wu").decide(number, "approved", actor="wang.wu", comment="", idempotency_key="key-F1")
    assert caught.value.permanent is True
    assert "Purchase Requisition Approval" in str(caught.value)
    assert "wang.wu" in str(caught.value)
    state = tryton_state(tryton, number)
    assert (state["state"], state["notes"]) == ("waiting", [])


def test_wrong_password_is_permanent_and_down_is_transient(tryton: TrytonServer) -> None:
    with pytest.raises(ConnectorError, match="wrong login or password") as caught:
        client(tryton, password="not-it").login()
    assert caught.value.permanent is True
    closed = TrytonClient("http://127.0.0.1:9", tryton.database, "li.si", "x", timeout=2)
    with pytest.raises(ConnectorError) as down:
        closed.login()
    assert down.value.permanent is False


def test_stock_by_item_and_warehouse(tryton: TrytonServer) -> None:
    levels = {(s.sku, s.warehouse): s for s in connector(tryton).stock(skus=["SKU-123", "SKU-456"])}
    assert levels[("SKU-123", "SH")].quantity == Decimal(12)
    assert levels[("SKU-123", "BJ")].quantity == Decimal(3)
    assert levels[("SKU-456", "SH")].quantity == Decimal(40)
    assert levels[("SKU-456", "BJ")].quantity == Decimal(0)
    assert (levels[("SKU-123", "BJ")].warehouse_name, levels[("SKU-123", "BJ")].unit) == ("北京仓", "u")
    only_bj = connector(tryton).stock(warehouses=["BJ"])
    assert {s.warehouse for s in only_bj} == {"BJ"}


def test_sales_orders_and_users(tryton: TrytonServer) -> None:
    [order] = connector(tryton).sales_orders()
    assert (order.customer, order.status, order.amount, order.currency) == ("华东机械", "quotation",
                                                                           Decimal("1761.00"), "CNY")
    users = {u.login: u for u in connector(tryton).users()}
    assert set(users) == {"li.si", "zhang.san", "wang.wu"}
    assert "Purchase Requisition Approval" in users["li.si"].roles
    assert "Purchase Requisition Approval" not in users["wang.wu"].roles
    assert users["li.si"].employee == "李四"


def test_receivables_from_posted_customer_invoices(tryton: TrytonServer) -> None:
    erp = connector(tryton)
    assert supports(erp, RECEIVABLES) and supports(erp, CHANGES)
    [invoice] = erp.receivables()
    assert invoice.id == tryton.seed["invoice_number"]
    assert (invoice.customer, invoice.amount, invoice.paid, invoice.outstanding, invoice.currency) == (
        "华东机械", Decimal("16000.00"), Decimal("0.00"), Decimal("16000.00"), "CNY")
    assert invoice.due_date == dt.date.fromisoformat(tryton.seed["invoice_due"])  # the payment term's 30 days
    assert erp.receivables(customer="华东机械") == [invoice]
    assert erp.receivables(customer="没有这个客户") == []
    assert erp.receivables(project="项目A") == []  # core Tryton invoices carry no project


def test_changes_since_a_cursor(tryton: TrytonServer) -> None:
    everything = connector(tryton).changes(None)
    assert {c.kind for c in everything.changes} == {"document", "order", "receivable", "stock"}
    assert ("receivable", tryton.seed["invoice_number"]) in {(c.kind, c.id) for c in everything.changes}
    assert everything.cursor is not None
    number = new_requisition(tryton, description="变更")
    later = connector(tryton).changes(everything.cursor + dt.timedelta(microseconds=1))
    assert ("document", number) in {(c.kind, c.id) for c in later.changes}
    assert ("receivable", tryton.seed["invoice_number"]) not in {(c.kind, c.id) for c in later.changes}
    assert later.cursor is not None and later.cursor > everything.cursor


@pytest.mark.django_db
def test_poll_mirrors_receivables(tryton: TrytonServer) -> None:
    from finance.models import Receivable

    settings = configured(tryton, slug="tryton-ar")
    settings.event_types = ["erp.receivable.changed"]
    settings.save()
    assert poll(settings).accepted == 1
    mirrored = Receivable.objects.get(connector=settings.connector, external_id=tryton.seed["invoice_number"])
    assert (mirrored.customer, mirrored.amount, mirrored.paid) == ("华东机械", Decimal("16000.00"), Decimal(0))
    assert mirrored.due_date == dt.date.fromisoformat(tryton.seed["invoice_due"])
    settings.refresh_from_db()
    assert poll(settings).accepted == 0  # the overlap window reads it again: a duplicate, nothing new


@pytest.mark.django_db
def test_poll_emits_each_change_once_through_the_intake(
    tryton: TrytonServer, django_capture_on_commit_callbacks
) -> None:
    from approvals.models import ApprovalDocument
    from inventory.models import StockLevel

    settings = configured(tryton)
    number = new_requisition(tryton, description="轴承", qty=10, price="12.34")
    with django_capture_on_commit_callbacks(execute=True):
        first = poll(settings)
    assert first.accepted >= 2
    document = ApprovalDocument.objects.get(connector=settings.connector, external_id=number)
    assert (document.title, document.amount, document.status) == ("轴承", Decimal("123.40"), "pending")
    assert [(line.sku, line.qty) for line in document.lines.all()] == [("SKU-456", Decimal(10))]
    assert StockLevel.objects.get(connector=settings.connector, sku="SKU-123", warehouse="BJ").quantity == 3
    events = InboundEvent.objects.filter(connector=settings.connector)
    assert events.filter(type="erp.approval.requested", subject=number).count() == 1
    assert events.filter(type="erp.stock.changed", subject="SKU-123@SH").count() == 1
    count = events.count()

    settings.refresh_from_db()
    assert settings.cursor is not None
    with django_capture_on_commit_callbacks(execute=True):
        again = poll(settings)
    assert (again.accepted, events.count()) == (0, count)  # the overlap window re-reads; nothing is new

    approver = client(tryton)
    [row] = approver.search_read("purchase.requisition", [("number", "=", number)], ["id"])
    approver.model("purchase.requisition", "reject", [row["id"]])
    settings.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        third = poll(settings)
    assert third.accepted == 1
    document.refresh_from_db()
    assert (document.status, document.decided_by_name) == ("rejected", "li.si")
    assert events.filter(type="erp.approval.decided", subject=number).count() == 1


@pytest.mark.django_db
def test_beat_task_polls_at_the_interval(tryton: TrytonServer) -> None:
    from erp.tasks import poll_connectors

    settings = configured(tryton, slug="tryton-beat")
    settings.event_types = ["erp.stock.changed"]
    settings.save()
    assert poll_connectors()["tryton-beat"] > 0
    assert poll_connectors() == {}  # not due again before poll_interval
    settings.refresh_from_db()
    assert settings.last_polled_at is not None
    assert not InboundEvent.objects.filter(type__startswith="erp.approval").exists()


@pytest.mark.django_db
def test_get_connector_uses_the_configured_connection(tryton: TrytonServer) -> None:
    configured(tryton)
    tryton_connector = get_connector("tryton")
    assert isinstance(tryton_connector, TrytonConnector)
    assert tryton_connector.read_document(tryton.seed["requisition_number"]) is not None


@pytest.mark.django_db
def test_credentials_are_encrypted_at_rest(tryton: TrytonServer) -> None:
    settings = configured(tryton)
    with connection.cursor() as cursor:
        cursor.execute("SELECT password_encrypted FROM erp_connectorsettings WHERE id = %s", [settings.pk])
        [raw] = cursor.fetchone()
    assert tryton.password not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert ConnectorSettings.objects.get(pk=settings.pk).get_password() == tryton.password


@pytest.mark.django_db
def test_key_rotation(tryton: TrytonServer, settings) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    row = configured(tryton)
    before = ConnectorSettings.objects.get(pk=row.pk).password_encrypted
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_connector_keys", stdout=out)
    assert "re-encrypted 1" in out.getvalue()
    after = ConnectorSettings.objects.get(pk=row.pk).password_encrypted
    assert after != before
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can go now
    assert ConnectorSettings.objects.get(pk=row.pk).get_password() == tryton.password


@pytest.mark.django_db
@translation.override("en")
def test_connection_report(tryton: TrytonServer) -> None:
    ok, lines = connection_report(configured(tryton).connector)
    assert ok is True, lines
    assert any("approve" in line and line.startswith("✓") for line in lines)
    ok, lines = connection_report(configured(tryton, login="wang.wu", slug="tryton-2").connector)
    assert ok is False
    assert any(line.startswith("✗ approve") and "Purchase Requisition Approval" in line for line in lines)
    assert any(line.startswith("✗ read sales orders") for line in lines)
    assert any(line.startswith("✓ read purchase requisitions") for line in lines)


def _portal_approver(settings: ConnectorSettings, login: str = "li.si"):
    from django.contrib.auth import get_user_model

    from sso.models import ErpIdentity, PermissionRule

    user = get_user_model().objects.create_user(login, password="x")  # noqa: S106
    ErpIdentity.objects.create(user=user, connector=settings.connector, erp_login=login)
    # The portal's own rule (admin-edited in real life): own documents may be viewed and decided.
    rule = PermissionRule.objects.create(
        name="approvers", actions=["approvals.view", "approvals.decide"], own_documents=True
    )
    rule.users.add(user)
    return user


@pytest.mark.django_db
def test_portal_decision_is_written_back_to_tryton_once(
    tryton: TrytonServer, django_capture_on_commit_callbacks
) -> None:
    """The loop: poll → document and card → portal decision → writeback task → Tryton approved."""
    from approvals import services
    from approvals.models import ApprovalDocument, Decision

    settings = configured(tryton)
    approver = _portal_approver(settings)
    number = new_requisition(tryton, description="端到端")
    with django_capture_on_commit_callbacks(execute=True):
        poll(settings)
    document = ApprovalDocument.objects.get(connector=settings.connector, external_id=number)
    with django_capture_on_commit_callbacks(execute=True):
        services.decide(approver, document.pk, "approved", comment="同意", idempotency_key="portal-key-1")
    decision = Decision.objects.get(document=document)
    assert (decision.writeback_status, decision.writeback_attempts) == ("done", 1), decision.writeback_error
    assert decision.erp_reference.startswith("purchase.requisition,")
    assert tryton_state(tryton, number)["state"] in {"approved", "processing"}
    # The task delivered again (a worker died after Tryton answered): a replay, nothing written twice.
    Decision.objects.filter(pk=decision.pk).update(writeback_status="pending")
    before = tryton_state(tryton, number)
    services.write_back(decision.pk)
    after = tryton_state(tryton, number)
    assert (after["write_date"], len(after["notes"])) == (before["write_date"], 1)
    # Tryton's own echo of the decision changes nothing in the portal.
    with django_capture_on_commit_callbacks(execute=True):
        poll(ConnectorSettings.objects.get(pk=settings.pk))
    document.refresh_from_db()
    assert document.status == "approved"


@pytest.mark.django_db
def test_account_without_group_fails_the_writeback_visibly_without_retries(
    tryton: TrytonServer, django_capture_on_commit_callbacks
) -> None:
    from approvals import services
    from approvals.models import ApprovalDocument, Decision

    settings = configured(tryton, login="wang.wu")
    approver = _portal_approver(settings)
    number = new_requisition(tryton, description="无权限")
    with django_capture_on_commit_callbacks(execute=True):
        poll(settings)
    document = ApprovalDocument.objects.get(connector=settings.connector, external_id=number)
    with django_capture_on_commit_callbacks(execute=True):
        services.decide(approver, document.pk, "approved", idempotency_key="portal-key-2")
    decision = Decision.objects.get(document=document)
    assert (decision.writeback_status, decision.writeback_attempts) == ("failed", 1)
    assert "Purchase Requisition Approval" in decision.writeback_error
    assert tryton_state(tryton, number)["state"] == "waiting"


@pytest.mark.django_db
def test_connection_report_speaks_chinese_by_default(tryton: TrytonServer) -> None:
    with translation.override("zh-hans"):
        ok, lines = connection_report(configured(tryton, login="wang.wu").connector)
    assert ok is False
    assert any(line.startswith("✗ 批准和驳回请购单") for line in lines), lines


@pytest.mark.django_db
@translation.override("en")
def test_admin_form_encrypts_and_action_reports(tryton: TrytonServer, admin_client) -> None:
    from erp.admin import ConnectorSettingsForm

    row = Connector.objects.create(slug="tryton-admin", name="Tryton", kind="tryton")
    form = ConnectorSettingsForm(data={
        "base_url": tryton.base_url, "database": tryton.database, "login": "li.si", "password": tryton.password,
        "poll_interval": 30, "event_types": ["erp.approval.requested", "erp.order.status_changed"],
    }, instance=ConnectorSettings(connector=row))
    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.password_encrypted and tryton.password not in saved.password_encrypted
    assert saved.emits("erp.order.status_changed") and not saved.emits("erp.stock.changed")
    # Saving again without a password keeps the stored one.
    again = ConnectorSettingsForm(data={**form.data, "password": ""}, instance=saved)
    assert again.is_valid(), again.errors
    assert again.save().get_password() == tryton.password

    response = admin_client.post(
        "/admin/erp/connector/", {"action": "test_connection", "_selected_action": [row.pk]}, follow=True
    )
    text = response.content.decode()  # the admin speaks the portal's default language
    assert "✓ 登录" in text and "✓ 批准和驳回请购单" in text, text[-3000:]
