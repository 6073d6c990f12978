"""Tests of the demo ERP: connector, fault plan, seed, emitter (through the real intake), console."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from erp import events
from erp.connectors import get_connector
from erp.connectors.base import ConnectorError, DecisionConflict
from erp.intake import IntakeError, receive
from erp.models import Connector, InboundEvent
from erp.signing import signed_request

from . import emitter, services
from .connector import DemoConnector
from .models import (
    AppliedDecision,
    DocumentState,
    ExpenseClaim,
    FaultPlan,
    PurchaseRequisition,
    SalesOrder,
    Stock,
)
from .seed import seed_demo_erp

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> dict[str, int]:
    return seed_demo_erp(emit=False)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[events.ErpEvent]:
    """Temporary handlers for every type the demo emits; the real registry is restored after."""
    received: list[events.ErpEvent] = []
    for event_type in emitter.EVENT_TYPES:
        monkeypatch.setitem(events._handlers, event_type, received.append)
        monkeypatch.setitem(events.EVENT_SCHEMAS, event_type, {})
    return received


@pytest.fixture
def no_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the portal handled none of the demo's event types."""
    for event_type in emitter.EVENT_TYPES:
        monkeypatch.delitem(events._handlers, event_type, raising=False)


def decide(number: str = "PR-2026-0042", outcome: str = "approved", key: str = "k-1", actor: str = "li.si"):
    return DemoConnector().decide(number, outcome, actor=actor, comment="ok", idempotency_key=key)  # type: ignore[arg-type]


# --- connector --------------------------------------------------------------------------------


def test_registered_under_its_slug() -> None:
    connector = get_connector("demo")
    assert isinstance(connector, DemoConnector)
    assert connector.slug == "demo"


def test_read_requisition(seeded: dict[str, int]) -> None:
    snapshot = DemoConnector().read_document("PR-2026-0042")
    assert snapshot is not None
    assert snapshot.kind == "purchase_requisition"
    assert snapshot.title == "紧急采购: 伺服电机"
    assert snapshot.amount == Decimal("12800.00")
    assert snapshot.currency == "CNY"
    assert snapshot.requester == "zhang.san"
    assert snapshot.project == "项目A"
    assert snapshot.state == "pending"
    assert snapshot.approvers == ["li.si"]
    [line] = snapshot.lines
    assert (line.sku, line.name, line.qty, line.unit_price) == (
        "SKU-123",
        "伺服电机",
        Decimal(4),
        Decimal("3200"),
    )


def test_read_expense_claim_and_decided_and_unknown(seeded: dict[str, int]) -> None:
    claim = DemoConnector().read_document("EC-2026-0107")
    assert claim is not None
    assert (claim.kind, claim.state, claim.approvers, claim.lines) == (
        "expense_claim",
        "pending",
        ["wang.wu"],
        [],
    )
    approved = DemoConnector().read_document("PR-2026-0038")
    assert approved is not None
    assert (approved.state, approved.decided_by) == ("approved", "li.si")
    assert approved.decided_at is not None
    assert DemoConnector().read_document("PR-2026-9999") is None


def test_decide_writes_once_and_replays(seeded: dict[str, int]) -> None:
    first = decide(key="key-A")
    assert (first.outcome, first.decided_by, first.replayed) == ("approved", "li.si", False)
    pr = PurchaseRequisition.objects.get(number="PR-2026-0042")
    assert (pr.state, pr.decided_by, pr.decision_comment) == (DocumentState.APPROVED, "li.si", "ok")
    assert first.erp_reference == str(AppliedDecision.objects.get().pk)

    again = decide(outcome="rejected", key="key-A")  # same key: the first result, nothing changes
    assert again.replayed is True
    assert (again.outcome, again.decided_by, again.decided_at, again.erp_reference) == (
        first.outcome,
        first.decided_by,
        first.decided_at,
        first.erp_reference,
    )
    assert AppliedDecision.objects.count() == 1
    pr.refresh_from_db()
    assert pr.state == DocumentState.APPROVED


def test_other_key_on_decided_document_conflicts(seeded: dict[str, int]) -> None:
    decide(key="key-A")
    with pytest.raises(DecisionConflict) as caught:
        decide(outcome="rejected", key="key-B")
    assert (caught.value.outcome, caught.value.decided_by) == ("approved", "li.si")
    assert caught.value.decided_at is not None
    assert AppliedDecision.objects.count() == 1


def test_decision_taken_in_the_erp_conflicts(seeded: dict[str, int], captured: list) -> None:
    services.decide_in_erp("EC-2026-0107", "rejected", "wang.wu", "发票不全")
    with pytest.raises(DecisionConflict) as caught:
        decide("EC-2026-0107", "approved", key="key-C", actor="wang.wu")
    assert (caught.value.outcome, caught.value.decided_by) == ("rejected", "wang.wu")


def test_non_approver_and_unknown_document_are_permanent(seeded: dict[str, int]) -> None:
    with pytest.raises(ConnectorError, match="is not an approver") as caught:
        decide(actor="zhang.san")
    assert caught.value.permanent is True
    with pytest.raises(ConnectorError) as unknown:
        decide("PR-2026-9999")
    assert unknown.value.permanent is True
    assert AppliedDecision.objects.count() == 0
    assert PurchaseRequisition.objects.get(number="PR-2026-0042").state == DocumentState.WAITING


def test_key_reused_for_another_document_is_refused(seeded: dict[str, int]) -> None:
    decide(key="key-A")
    with pytest.raises(ConnectorError) as caught:
        decide("PR-2026-0043", key="key-A")
    assert caught.value.permanent is True
    assert PurchaseRequisition.objects.get(number="PR-2026-0043").state == DocumentState.WAITING


def test_transient_faults_then_success(seeded: dict[str, int]) -> None:
    services.set_faults(transient_failures=2)
    for left in (1, 0):
        with pytest.raises(ConnectorError) as caught:
            decide()
        assert caught.value.permanent is False
        assert FaultPlan.objects.get(pk=1).transient_failures_left == left
    assert PurchaseRequisition.objects.get(number="PR-2026-0042").state == DocumentState.WAITING
    result = decide()
    assert result.replayed is False
    assert AppliedDecision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_transient_fault_decrement_is_committed() -> None:
    """Real commits (no test transaction): another process would see the decrement."""
    seed_demo_erp(emit=False)
    services.set_faults(transient_failures=1)
    with pytest.raises(ConnectorError):
        decide()
    assert FaultPlan.objects.get(pk=1).transient_failures_left == 0
    assert decide().replayed is False


def test_permanent_fault(seeded: dict[str, int]) -> None:
    services.set_faults(permanent=True)
    with pytest.raises(ConnectorError) as caught:
        decide()
    assert caught.value.permanent is True
    services.clear_faults()
    assert decide().replayed is False


def test_stall_after_writing(seeded: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def fake_sleep(seconds: float) -> None:
        # The ERP has already recorded the decision when the worker stalls.
        assert AppliedDecision.objects.filter(idempotency_key="key-S").exists()
        slept.append(seconds)

    monkeypatch.setattr("erp.connectors.demo.connector.time.sleep", fake_sleep)
    services.set_faults(stall_seconds=2.5)
    decide(key="key-S")
    assert slept == [2.5]
    assert decide(key="key-S").replayed is True
    assert slept == [2.5]  # a replay does not stall again


# --- seed -------------------------------------------------------------------------------------


def test_seed_is_idempotent(captured: list[events.ErpEvent]) -> None:
    first = seed_demo_erp()
    assert first["users"] == 5
    assert first["requisitions"] >= 4
    assert first["expense_claims"] == 2
    waiting = (
        PurchaseRequisition.objects.filter(state="waiting").count()
        + ExpenseClaim.objects.filter(state="waiting").count()
    )
    assert first["events"] == waiting == len(captured)
    assert {e.data["document"]["id"] for e in captured} >= {"PR-2026-0042", "EC-2026-0107"}

    counts = {
        model: model.objects.count() for model in (PurchaseRequisition, Stock, SalesOrder, InboundEvent)
    }
    second = seed_demo_erp()
    assert set(second.values()) == {0}
    assert {model: model.objects.count() for model in counts} == counts
    assert len(captured) == waiting


def test_seed_data_is_believable(seeded: dict[str, int]) -> None:
    pr = PurchaseRequisition.objects.get(number="PR-2026-0042")
    assert (pr.title, pr.amount, pr.currency, pr.urgent, pr.state) == (
        "紧急采购: 伺服电机",
        Decimal("12800.00"),
        "CNY",
        True,
        "waiting",
    )
    assert PurchaseRequisition.objects.filter(state="waiting", project__name="项目B").exists()
    assert PurchaseRequisition.objects.filter(state="approved").exists()
    assert any(stock.below_safety for stock in Stock.objects.select_related("item"))
    assert SalesOrder.objects.get(number="SO-2026-0815").status == "shipped"
    assert SalesOrder.objects.filter(status="delayed").exists()
    assert Connector.objects.filter(slug="demo", kind="demo").exists()


def test_ensure_connector_uses_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    generated = services.ensure_connector().webhook_secret
    assert generated.startswith("whsec_")
    assert services.ensure_connector().webhook_secret == generated
    monkeypatch.setenv("ERP_DEMO_WEBHOOK_SECRET", "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbW8tZXJw")
    assert services.ensure_connector().webhook_secret == "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbW8tZXJw"
    assert Connector.objects.get(slug="demo").webhook_secret == "whsec_dGVzdC1zZWNyZXQtZm9yLWRlbW8tZXJw"


# --- emitter ----------------------------------------------------------------------------------


def test_emitter_goes_through_the_signed_intake(seeded: dict[str, int], captured: list) -> None:
    result = emitter.emit_approval_requested(PurchaseRequisition.objects.get(number="PR-2026-0042"))
    assert result.duplicate is False
    [event] = captured
    assert (event.type, event.source, event.subject) == (
        "erp.approval.requested",
        "urn:erp:demo",
        "PR-2026-0042",
    )
    assert event.data == {
        "document": {
            "id": "PR-2026-0042",
            "kind": "purchase_requisition",
            "title": "紧急采购: 伺服电机",
            "amount": "12800.00",
            "currency": "CNY",
            "requester": "zhang.san",
            "project": "项目A",
            "urgent": True,
            "lines": [{"sku": "SKU-123", "name": "伺服电机", "qty": "4", "unit_price": "3200.00"}],
            "urgent_reason": "伺服电机 (SKU-123) 库存低于安全库存，装配线待料 / below safety stock, the assembly "
                             "line is waiting",
        },
        "approvers": ["li.si"],
    }
    assert InboundEvent.objects.filter(event_id=result.event_id, type="erp.approval.requested").exists()


def test_emitted_request_is_verifiable_and_replay_is_a_duplicate(
    seeded: dict[str, int], captured: list
) -> None:
    envelope = emitter.build_envelope("erp.stock.changed", emitter.stock_changed_data(Stock.objects.first()))
    headers, body = signed_request(Connector.objects.get(slug="demo").webhook_secret, envelope)
    assert receive("demo", headers, body).duplicate is False
    assert receive("demo", headers, body).duplicate is True
    tampered = body.replace(b'"quantity"', b'"quantity" ')
    with pytest.raises(IntakeError) as caught:
        receive("demo", headers, tampered)
    assert caught.value.status == 401
    assert len(captured) == 1


def test_unhandled_event_type_propagates(seeded: dict[str, int], no_handlers: None) -> None:
    with pytest.raises(IntakeError) as caught:
        emitter.emit_stock_changed(Stock.objects.first())
    assert caught.value.status == 400


def _emitted_envelopes(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """One envelope per event type, as the emitter sends it (captured at the signing step)."""
    sent: dict[str, dict[str, Any]] = {}
    real = emitter.signed_request

    def capture(secret: str, envelope: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        sent[envelope["type"]] = json.loads(json.dumps(envelope))
        return real(secret, envelope)

    monkeypatch.setattr(emitter, "signed_request", capture)
    emitter.emit_approval_requested(PurchaseRequisition.objects.get(number="PR-2026-0042"))
    services.decide_in_erp("PR-2026-0043", "approved", "li.si", "同意")
    services.adjust_stock("SKU-123", "SH", 5)
    services.set_order_status("SO-2026-0816", "shipped")
    services.record_payment("INV-2026-0301", "6500.00")
    return sent


def _shape(value: Any) -> Any:
    """Keys (recursively) and JSON types, not values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("event_type", emitter.EVENT_TYPES)
def test_emitter_matches_recorded_fixture(
    event_type: str, seeded: dict[str, int], captured: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = json.loads((FIXTURES / f"{event_type}.json").read_text(encoding="utf-8"))
    emitted = _emitted_envelopes(monkeypatch)[event_type]
    assert _shape(emitted) == _shape(recorded)
    assert emitted["type"] == recorded["type"] == event_type
    assert emitted["source"] == recorded["source"] == "urn:erp:demo"


def test_expense_claim_event_has_category_and_no_lines(seeded: dict[str, int], captured: list) -> None:
    emitter.emit_approval_requested(ExpenseClaim.objects.get(number="EC-2026-0107"))
    document = captured[0].data["document"]
    assert (document["kind"], document["category"], document["lines"], document["amount"]) == (
        "expense_claim",
        "差旅费",
        [],
        "3860.00",
    )


def test_decided_event_has_offset_timestamp(seeded: dict[str, int], captured: list) -> None:
    services.decide_in_erp("PR-2026-0042", "rejected", "li.si", "预算不足")
    [event] = captured
    assert event.type == "erp.approval.decided"
    assert event.data["outcome"] == "rejected"
    assert event.data["comment"] == "预算不足"
    assert dt.datetime.fromisoformat(event.data["decided_at"]).utcoffset() is not None


# --- services ---------------------------------------------------------------------------------


def test_urgent_requisitions_get_next_numbers_and_vary(seeded: dict[str, int], captured: list) -> None:
    first = services.create_urgent_requisition()
    second = services.create_urgent_requisition()
    assert (first.number, second.number) == ("PR-2026-0045", "PR-2026-0046")
    for pr in (first, second):
        assert (pr.state, pr.urgent, pr.requester, pr.approvers, pr.project.name) == (
            "waiting",
            True,
            "zhang.san",
            ["li.si"],
            "项目A",
        )
        assert pr.amount == sum(line.qty * line.unit_price for line in pr.lines.all())
    assert [line.sku for line in first.lines.all()] != [line.sku for line in second.lines.all()]
    assert [e.data["document"]["id"] for e in captured] == ["PR-2026-0045", "PR-2026-0046"]


def test_decide_in_erp_refuses_a_decided_document(seeded: dict[str, int], captured: list) -> None:
    with pytest.raises(ValueError, match="PR-2026-0038"):
        services.decide_in_erp("PR-2026-0038", "rejected", "li.si")
    with pytest.raises(ValueError):
        services.decide_in_erp("PR-2026-0042", "approved", "zhang.san")
    assert captured == []


def test_change_is_kept_when_the_portal_refuses_the_event(seeded: dict[str, int], no_handlers: None) -> None:
    with pytest.raises(IntakeError):
        services.adjust_stock("SKU-123", "SH", -5)
    assert Stock.objects.get(item__sku="SKU-123", warehouse__code="SH").quantity == Decimal(1)


def test_stock_and_order_services(seeded: dict[str, int], captured: list) -> None:
    stock = services.adjust_stock("SKU-201", "SZ", 5)
    assert stock.quantity == Decimal(125)
    with pytest.raises(ValueError):
        services.adjust_stock("SKU-201", "SZ", -1000)
    order = services.set_order_status("SO-2026-0816", "shipped")
    assert order.status == "shipped"
    services.set_order_status("SO-2026-0816", "shipped")  # unchanged: no event
    assert [e.type for e in captured] == ["erp.stock.changed", "erp.order.status_changed"]
    assert captured[0].data["quantity"] == "125"
    assert captured[0].data["safety_level"] == "200"
    assert captured[1].data["order"]["previous_status"] == "delayed"


# --- console ----------------------------------------------------------------------------------


@pytest.fixture
def console_url(settings: Any) -> str:
    settings.DEMO_ERP_ENABLED = True  # portal.settings_test mounts the console
    return reverse("demo_erp:console")


@pytest.fixture
def staff_client(client: Any, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(user)
    return client


def test_console_is_staff_only(console_url: str, client: Any, django_user_model: Any, settings: Any) -> None:
    assert client.get(console_url).status_code == 302
    client.force_login(django_user_model.objects.create_user("someone", password="x"))
    assert client.get(console_url).status_code == 302
    settings.DEMO_ERP_ENABLED = False
    client.force_login(django_user_model.objects.create_user("boss", password="x", is_staff=True))
    assert client.get(console_url).status_code == 404


def test_console_lists_and_acts(
    console_url: str, staff_client: Any, seeded: dict[str, int], captured: list
) -> None:
    page = staff_client.get(console_url)
    assert page.status_code == 200
    assert "PR-2026-0042" in page.content.decode()

    response = staff_client.post(reverse("demo_erp:decide", args=["PR-2026-0042"]), {"outcome": "approved"})
    assert response.status_code == 302
    assert PurchaseRequisition.objects.get(number="PR-2026-0042").decided_by == "li.si"
    staff_client.post(reverse("demo_erp:new_requisition"))
    stock = Stock.objects.get(item__sku="SKU-123", warehouse__code="SH")
    staff_client.post(reverse("demo_erp:adjust_stock", args=[stock.pk]), {"direction": "up"})
    staff_client.post(reverse("demo_erp:order_status", args=["SO-2026-0821"]), {"status": "picking"})
    assert [e.type for e in captured] == [
        "erp.approval.decided",
        "erp.approval.requested",
        "erp.stock.changed",
        "erp.order.status_changed",
    ]
    # Deciding again is refused with a message, not an error page.
    again = staff_client.post(
        reverse("demo_erp:decide", args=["PR-2026-0042"]), {"outcome": "rejected"}, follow=True
    )
    assert again.status_code == 200
    assert PurchaseRequisition.objects.get(number="PR-2026-0042").state == "approved"


def test_console_shows_a_refused_event_as_a_message(
    console_url: str, staff_client: Any, seeded: dict[str, int], no_handlers: None
) -> None:
    stock = Stock.objects.get(item__sku="SKU-123", warehouse__code="SH")
    response = staff_client.post(reverse("demo_erp:adjust_stock", args=[stock.pk]), {"direction": "up"})
    assert response.status_code == 302
    notes = [str(m) for m in response.wsgi_request._messages]
    assert any("400" in note for note in notes)
    stock.refresh_from_db()
    assert stock.quantity == Decimal(11)


def test_console_shows_one_section_searched_and_paged(
    console_url: str, staff_client: Any, seeded: dict[str, int]
) -> None:
    from erp.connectors.demo.models import DocumentState, ExpenseClaim
    from erp.connectors.demo.views import PAGE_SIZE

    ExpenseClaim.objects.bulk_create(
        ExpenseClaim(number=f"EC-2025-{i:04d}", title=f"差旅 {i}", requester="zhang.san", approvers=["wang.wu"],
                     amount=Decimal(100 + i), state=DocumentState.APPROVED, category="差旅")
        for i in range(2 * PAGE_SIZE + 5)
    )
    first = staff_client.get(console_url).content.decode()
    assert 'data-section="requisitions"' in first and "PR-2026-0042" in first
    assert "EC-2025-" not in first  # other sections are not on the page at all

    claims = staff_client.get(console_url, {"section": "claims"}).content.decode()
    assert claims.count('<tr data-number="EC-') == PAGE_SIZE
    waiting = ExpenseClaim.objects.filter(state=DocumentState.WAITING).order_by("-number").first()
    assert waiting is not None and claims.index(waiting.number) < claims.index("EC-2025-")  # waiting first
    last = staff_client.get(console_url, {"section": "claims", "page": 3}).content.decode()
    total = ExpenseClaim.objects.count()
    assert last.count('<tr data-number="EC-') == total - 2 * PAGE_SIZE
    assert 'rel="prev"' in last and 'rel="next"' not in last

    found = staff_client.get(console_url, {"section": "claims", "q": "EC-2025-0007"}).content.decode()
    assert found.count('<tr data-number="EC-') == 1 and "EC-2025-0007" in found


def test_console_with_htmx_swaps_only_the_section(
    console_url: str, staff_client: Any, seeded: dict[str, int], captured: list
) -> None:
    partial = staff_client.get(console_url, {"section": "stock"}, headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith('<div id="section"') and "<html" not in partial and 'data-sku="SKU-123"' in partial

    stock = Stock.objects.get(item__sku="SKU-123", warehouse__code="SH")
    response = staff_client.post(reverse("demo_erp:adjust_stock", args=[stock.pk]),
                                 {"direction": "up", "section": "stock", "q": "SKU-123", "page": "1"},
                                 headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith('<div id="section"') and "<html" not in html
    assert 'class="messages"' in html and "SKU-123" in html and 'data-sku="SKU-201"' not in html  # search kept
    assert [e.type for e in captured] == ["erp.stock.changed"]

    plain = staff_client.post(reverse("demo_erp:adjust_stock", args=[stock.pk]),
                              {"direction": "up", "section": "stock"})
    assert plain.status_code == 302 and plain["Location"].endswith("?section=stock")  # without JavaScript
