"""The generic webhook adapter: signed per Standard Webhooks (the spec's own example as a check),
idempotent webhook ids, answers mapped, inbound callbacks verified, and the portal's whole loop."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from approvals.models import ApprovalDocument, Decision
from im.cards import Card, CardAction
from im.models import Delivery, MessageRef
from im.platforms.base import CallbackRejected, TransportError
from im.platforms.httpfake import FakeApi, recorded
from im.platforms.webhook.adapter import WebhookAdapter, webhook_id
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://receiver.example/portal-cards"


def answer(name: str) -> httpx.Response:
    return recorded(FIXTURES, name)


def make_card(**extra) -> Card:
    data = dict(topic="approval.1", title="Purchase requisition: 伺服电机", status="pending",
                status_label="Waiting for your decision", link="http://testserver/s/t/", link_label="Open",
                locale="zh-hans", actions=[CardAction("approve", "批准", "primary")])
    data.update(extra)
    return Card(**data)


def hook(route) -> tuple[WebhookAdapter, FakeApi]:
    api = FakeApi(route if callable(route) else (lambda request: answer(route)))
    return WebhookAdapter(api.transport, url=URL, secret=SECRET), api


def inbound(data: dict, *, secret: str = SECRET, at: dt.datetime | None = None) -> tuple[dict, bytes]:
    body = json.dumps(data, ensure_ascii=False).encode()
    at = at or dt.datetime.now(dt.UTC)
    msg_id = f"msg_{uuid.uuid4().hex}"
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode())}, body


def test_the_spec_example_signature():
    example = json.loads((FIXTURES / "spec_example.json").read_text())
    at = dt.datetime.fromtimestamp(example["timestamp"], dt.UTC)
    assert Webhook(example["secret"]).sign(example["msg_id"], at, example["payload"]) == example["signature"]


def test_send_card_posts_signed_json_with_an_idempotent_id():
    adapter, api = hook("accepted_200")
    sent = adapter.send_card("li.si", make_card(), idempotency_key="d:1:webhook")
    assert sent.message_id == "rcv-8812"
    request = api.requests[0]
    assert str(request.url) == URL and request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == webhook_id("d:1:webhook")
    # The receiver's check, with the spec's library: the signature covers id, timestamp and body.
    body = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert body["type"] == "card.send"
    assert body["data"] == {"address": "li.si", "card": make_card().to_dict(), "idempotency_key": "d:1:webhook"}
    adapter.send_card("li.si", make_card(), idempotency_key="d:1:webhook")  # a retry: the same webhook-id
    assert api.requests[1].headers["webhook-id"] == request.headers["webhook-id"]
    assert webhook_id("d:2:webhook") != request.headers["webhook-id"]


def test_without_a_message_id_in_the_answer_the_webhook_id_is_the_reference():
    adapter, _ = hook("accepted_204")
    assert adapter.send_card("li.si", make_card(), idempotency_key="k").message_id == webhook_id("k")


def test_update_text_group_widget_events():
    adapter, api = hook(lambda request: answer("group_created_200"))
    adapter.update_card("li.si", "rcv-8812", make_card(status="approved", actions=[]))
    assert api.json()["type"] == "card.update" and api.json()["data"]["message_id"] == "rcv-8812"
    adapter.update_card("li.si", "rcv-8812", make_card(status="approved", actions=[]))
    assert api.requests[0].headers["webhook-id"] == api.requests[1].headers["webhook-id"]
    assert adapter.create_group("War room", ["a", "b"], idempotency_key="g").chat_id == "room-42"
    adapter.add_members("room-42", ["c"])
    adapter.post_widget("room-42", "Stock", "http://testserver/w/stock/")
    adapter.reply_in_thread("li.si", "rcv-8812", "已批准")
    assert [json.loads(r.content)["type"] for r in api.requests[2:]] == [
        "group.create", "group.add_members", "chat.widget", "thread.reply"]


def test_a_group_answer_without_chat_id_is_permanent():
    adapter, _ = hook("accepted_204")
    with pytest.raises(TransportError) as caught:
        adapter.create_group("x", [], idempotency_key="k")
    assert caught.value.permanent


@pytest.mark.parametrize(("name", "permanent", "retry_after"), [
    ("too_many_429", False, 12), ("server_error_500", False, None), ("bad_request_400", True, None),
    ("gone_410", True, None),
])
def test_answers_are_mapped(name, permanent, retry_after):
    adapter, _ = hook(name)
    with pytest.raises(TransportError) as caught:
        adapter.send_card("li.si", make_card(), idempotency_key="k")
    assert caught.value.permanent is permanent and caught.value.retry_after == retry_after


def test_a_timeout_is_transient_and_no_url_is_permanent():
    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    adapter, _ = hook(slow)
    with pytest.raises(TransportError) as caught:
        adapter.send_card("li.si", make_card(), idempotency_key="k")
    assert not caught.value.permanent
    with pytest.raises(TransportError) as caught:
        WebhookAdapter(url="", secret=SECRET).send_card("li.si", make_card(), idempotency_key="k")
    assert caught.value.permanent


def test_an_inbound_press_verifies():
    headers, body = inbound({"type": "card.action", "data": {"sender": "li.si", "message_id": "rcv-8812",
                                                             "action_id": "approve"}})
    event = WebhookAdapter(url=URL, secret=SECRET).parse_callback(headers, body, {})
    assert (event.kind, event.sender, event.message_id, event.action_id) == (
        "card_action", "li.si", "rcv-8812", "approve")


@pytest.mark.parametrize("case", ["wrong_secret", "expired", "tampered", "missing"])
def test_bad_inbound_signatures_are_rejected(case):
    data = {"type": "card.action", "data": {"sender": "li.si", "message_id": "m", "action_id": "approve"}}
    if case == "wrong_secret":
        headers, body = inbound(data, secret="whsec_" + "QUJD" * 8)
    elif case == "expired":
        headers, body = inbound(data, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    elif case == "tampered":
        headers, body = inbound(data)
        body = body.replace(b"approve", b"reject_")
    else:
        headers, body = {}, json.dumps(data).encode()
    with pytest.raises(CallbackRejected) as caught:
        WebhookAdapter(url=URL, secret=SECRET).parse_callback(headers, body, {})
    assert caught.value.status == 401


@pytest.fixture
def webhook_portal(settings, monkeypatch, users):
    settings.IM_ADAPTERS = ["devinbox", "webhook"]
    settings.IM_WEBHOOK_URL, settings.IM_WEBHOOK_SECRET = URL, SECRET
    settings.IM_RATE_LIMITS = {}
    ImIdentity.objects.create(user=users["li.si"], platform="webhook", external_id="li.si@receiver")
    api = FakeApi(lambda request: answer("accepted_200"))
    monkeypatch.setattr(WebhookAdapter, "default_transport", api.transport)
    return api


def test_an_approval_goes_out_by_webhook_and_an_inbound_press_decides(demo, users, webhook_portal, send_event,
                                                                       client, committed):
    api = webhook_portal
    send_event("erp.approval.requested", approval_requested("PR-2026-0991"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0991")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="webhook")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    assert MessageRef.objects.get(delivery=delivery).message_id == "rcv-8812"
    assert json.loads(api.requests[0].content)["data"]["address"] == "li.si@receiver"

    headers, body = inbound({"type": "card.action", "data": {"sender": "li.si@receiver", "message_id": "rcv-8812",
                                                             "action_id": "approve"}})
    with committed():
        response = client.post("/api/im/webhook/callback", data=body, content_type="application/json",
                               headers=headers)
    assert response.status_code == 200
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED
    assert Decision.objects.get(document=document).actor == users["li.si"]
    types = [json.loads(r.content)["type"] for r in api.requests]
    assert "card.update" in types and "action.result" in types

    headers, body = inbound({"type": "card.action", "data": {"sender": "li.si@receiver", "message_id": "rcv-8812",
                                                             "action_id": "reject"}}, secret="whsec_" + "QUJD" * 8)
    sent_before = len(api.requests)
    with committed():
        assert client.post("/api/im/webhook/callback", data=body, content_type="application/json",
                           headers=headers).status_code == 401
    assert len(api.requests) == sent_before
