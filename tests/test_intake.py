"""Every answer of the event intake (the integrator's contract), and that a refusal writes nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from approvals.models import ApprovalDocument
from erp.models import InboundEvent
from erp.signing import make_cloudevent, sign
from im.models import Delivery

from .conftest import approval_requested

pytestmark = pytest.mark.django_db
URL = "/api/erp/demo/events"


def post_raw(client, body: bytes, headers: dict[str, str], url: str = URL):
    return client.post(
        url,
        data=body,
        content_type="application/cloudevents+json",
        headers={k: v for k, v in headers.items() if k != "content-type"},
    )


def signed(connector, envelope: dict | bytes, **sign_kwargs) -> tuple[bytes, dict[str, str]]:
    body = envelope if isinstance(envelope, bytes) else json.dumps(envelope, ensure_ascii=False).encode()
    return body, sign(connector.webhook_secret, body, **sign_kwargs)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def nothing_written(before_events: int) -> None:
    assert InboundEvent.objects.count() == before_events
    assert not ApprovalDocument.objects.filter(external_id="PR-2026-0900").exists()
    assert not Delivery.objects.filter(topic__startswith="approval.", dedupe_key__contains="urn").exists()


def test_accepted_event_answers_202_with_its_id(send_event):
    response = send_event("erp.approval.requested", approval_requested())
    assert response.status_code == 202
    event = InboundEvent.objects.get(type="erp.approval.requested", data__document__id="PR-2026-0900")
    assert response.json() == {"id": event.event_id, "duplicate": False}


def test_same_webhook_id_again_is_202_and_changes_nothing(send_event):
    first = send_event("erp.approval.requested", approval_requested(), webhook_id="msg_same")
    events, deliveries = InboundEvent.objects.count(), Delivery.objects.count()
    again = send_event("erp.approval.requested", approval_requested(title="changed"), webhook_id="msg_same")
    assert first.status_code == again.status_code == 202
    assert again.json()["duplicate"] is True
    assert InboundEvent.objects.count() == events and Delivery.objects.count() == deliveries
    assert ApprovalDocument.objects.get(external_id="PR-2026-0900").title == "紧急采购: 伺服电机"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda h: h.pop("webhook-signature"), id="missing-signature"),
        pytest.param(lambda h: h.pop("webhook-id"), id="missing-id"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,AAAA"}), id="wrong-signature"),
        pytest.param(lambda h: h.update({"webhook-signature": "garbage"}), id="malformed-signature"),
        pytest.param(lambda h: h.update({"webhook-timestamp": "yesterday"}), id="malformed-timestamp"),
        pytest.param(lambda h: h.update({"webhook-id": "msg_other"}), id="id-not-signed"),
    ],
)
def test_bad_or_missing_signature_is_401(client, connector, mangle):
    before = InboundEvent.objects.count()
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()))
    mangle(headers)
    assert_problem(post_raw(client, body, headers), 401)
    nothing_written(before)


def test_tampered_body_is_401(client, connector):
    before = InboundEvent.objects.count()
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()))
    assert_problem(post_raw(client, body.replace(b"12800.00", b"1.00"), headers), 401)
    nothing_written(before)


def test_signed_with_another_secret_is_401(client, connector):
    before = InboundEvent.objects.count()
    body = json.dumps(make_cloudevent("erp.approval.requested", "urn:t", approval_requested())).encode()
    headers = sign("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", body)
    assert_problem(post_raw(client, body, headers), 401)
    nothing_written(before)


@pytest.mark.parametrize("minutes", [-6, 6])
def test_timestamp_outside_five_minutes_is_401(client, connector, minutes):
    before = InboundEvent.objects.count()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    body, headers = signed(
        connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()), timestamp=when
    )
    assert_problem(post_raw(client, body, headers), 401)
    nothing_written(before)


def test_timestamp_within_window_is_accepted(client, connector):
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)
    body, headers = signed(
        connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()), timestamp=when
    )
    assert post_raw(client, body, headers).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed-json"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(json.dumps({"specversion": "1.0", "id": "x", "source": "s"}).encode(), id="no-type"),
        pytest.param(json.dumps({"specversion": "1.0", "id": "", "source": "s", "type": "erp.approval.requested",
                                 "data": {}}).encode(), id="empty-id"),
        pytest.param(json.dumps({"id": "x", "source": "s", "type": "erp.approval.requested",
                                 "data": {}}).encode(), id="no-specversion"),
        pytest.param(json.dumps({"specversion": "0.3", "id": "x", "source": "s",
                                 "type": "erp.approval.requested", "data": {}}).encode(), id="old-specversion"),
        pytest.param(json.dumps({"specversion": "1.0", "id": "x", "source": "s",
                                 "type": "erp.approval.requested", "data": "text"}).encode(), id="data-not-object"),
        pytest.param(json.dumps({"specversion": "1.0", "id": "x", "source": "s", "type": "erp.unknown",
                                 "data": {}}).encode(), id="unsupported-type"),
        pytest.param(json.dumps({"specversion": "1.0", "id": "x", "source": "s", "time": "noon",
                                 "type": "erp.approval.requested", "data": {}}).encode(), id="bad-time"),
    ],
)
def test_malformed_or_incomplete_cloudevent_is_400(client, connector, body):
    before = InboundEvent.objects.count()
    assert_problem(post_raw(client, *signed(connector, body)), 400)
    nothing_written(before)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(approval_requested(approvers=[]), id="no-approvers"),
        pytest.param(approval_requested(amount="lots"), id="amount-not-a-number"),
        pytest.param(approval_requested(amount="NaN"), id="amount-nan"),
        pytest.param(approval_requested(title=""), id="empty-title"),
        pytest.param(approval_requested(lines=[{"name": "x", "qty": "1"}]), id="line-without-price"),
        pytest.param({"document": "PR-1", "approvers": ["li.si"]}, id="document-not-object"),
    ],
)
def test_invalid_event_data_is_400_and_nothing_half_written(client, connector, data):
    before = InboundEvent.objects.count()
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", data))
    body_json = assert_problem(post_raw(client, body, headers), 400)
    assert body_json["title"] == "Invalid event data"
    nothing_written(before)


def test_body_over_256_kb_is_413(client, connector):
    before = InboundEvent.objects.count()
    data = approval_requested(title="x" * 10, padding="p" * (256 * 1024))
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", data))
    assert_problem(post_raw(client, body, headers), 413)
    nothing_written(before)


def test_unknown_connector_is_404(client, connector):
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()))
    assert_problem(post_raw(client, body, headers, url="/api/erp/nope/events"), 404)


def test_disabled_connector_is_404(client, connector):
    connector.enabled = False
    connector.save()
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", approval_requested()))
    assert_problem(post_raw(client, body, headers), 404)


def test_get_is_not_allowed(client, connector):
    assert client.get(URL).status_code == 405


def test_stock_and_order_events_are_mirrored(send_event):
    from inventory.models import SalesOrder, StockLevel

    stock = {"sku": "SKU-123", "name": "伺服电机", "warehouse": "SH", "warehouse_name": "上海仓",
             "quantity": "3", "reserved": "1", "safety_level": "10", "unit": "台"}
    assert send_event("erp.stock.changed", stock).status_code == 202
    assert StockLevel.objects.get(sku="SKU-123", warehouse="SH").below_safety
    order = {"order": {"id": "SO-2026-0815", "customer": "华东电子", "status": "shipped",
                       "previous_status": "picking", "amount": "5000.00", "sales_rep": "chen.qi",
                       "delivery_date": "2026-12-01"}}
    assert send_event("erp.order.status_changed", order).status_code == 202
    assert SalesOrder.objects.get(external_id="SO-2026-0815").status == "shipped"
    bad = {"order": {"id": "SO-1", "customer": "x", "status": "shipped", "delivery_date": "soon"}}
    assert send_event("erp.order.status_changed", bad).status_code == 400


def test_decided_in_the_erp_updates_the_portal(send_event, users):
    send_event("erp.approval.requested", approval_requested())
    response = send_event("erp.approval.decided", {
        "document": {"id": "PR-2026-0900", "kind": "purchase_requisition"},
        "outcome": "rejected", "decided_by": "li.si", "decided_at": "2026-11-25T10:02:00+08:00",
        "comment": "预算不足",
    })
    assert response.status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0900")
    assert document.status == "rejected" and document.decided_by_name == "李四"
    unknown = send_event("erp.approval.decided", {"document": {"id": "PR-NOPE"}, "outcome": "approved",
                                                  "decided_by": "li.si"})
    assert_problem(unknown, 400)


def test_event_types_and_schema_are_published(client, db):
    types = client.get("/api/events/").json()["types"]
    assert {"erp.approval.requested", "erp.approval.decided", "erp.stock.changed",
            "erp.order.status_changed"} <= set(types)
    assert "approvers" in types["erp.approval.requested"]["required"]
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/erp/{connector}/events" in paths and "/api/approvals/{id}/decision" in paths


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(client, connector, monkeypatch):
    """Under overload the connection pool times out (psycopg_pool.PoolTimeout, an OperationalError to
    Django): the ERP is told to come back later, not that the portal broke."""
    from django.db import OperationalError

    from erp import views

    def unreachable(*args, **kwargs):
        raise OperationalError("couldn't get a connection after 20.00 sec")

    monkeypatch.setattr(views, "receive", unreachable)
    response = client.post("/api/erp/demo/events", data=b"{}", content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5" and response["Content-Type"] == "application/problem+json"
    assert "connection after" not in response.content.decode()  # no internals


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(approval_requested(urgent="yes"), id="urgent-not-boolean"),
        pytest.param(approval_requested(currency="RMB!"), id="currency-too-long"),
        pytest.param({**approval_requested(), "step": 0}, id="step-zero"),
    ],
)
def test_data_against_the_published_schema_is_refused_before_any_handler_runs(client, connector, data, monkeypatch):
    """The registered JSON Schema validates at the intake: the handler is never called."""
    from erp import events

    called = []
    monkeypatch.setitem(events._handlers, "erp.approval.requested", lambda event: called.append(event))
    before = InboundEvent.objects.count()
    body, headers = signed(connector, make_cloudevent("erp.approval.requested", "urn:t", data))
    body_json = assert_problem(post_raw(client, body, headers), 400)
    assert body_json["title"] == "Invalid event data" and body_json["detail"].startswith("data")
    assert called == []
    nothing_written(before)
