"""The Agora Chat adapter by contract: documented answers (fixtures/) in an httpx.MockTransport, the
requests asserted, app tokens against Agora's published test vectors, the callback ``security``
check, and the portal's whole loop through Agora Chat."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from approvals.models import ApprovalDocument, Decision
from im.cards import Card, CardAction, CardField
from im.models import Delivery, MessageRef
from im.platforms.agora import adapter as module
from im.platforms.agora.adapter import AgoraAdapter, error_from_response, parse_message_id, security
from im.platforms.agora.token import build_chat_token
from im.platforms.base import CallbackRejected, TransportError
from im.platforms.httpfake import FakeApi, recorded
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
APP_ID, CERT = "970CA35de60c44645bbae8a215061b33", "5CFd2fd1755d40ecb72977518be15d3b"
SECRET = "callback-secret-from-the-console"
CONFIG = dict(chat_host="a41.chat.agora.io", chat_org="61717166", chat_app="portal", app_id=APP_ID,
              app_certificate=CERT, chat_bot_user="portal-bot", chat_callback_secret=SECRET)


def answer(name: str) -> httpx.Response:
    return recorded(FIXTURES, name)


def make_card(**extra) -> Card:
    data = dict(
        topic="approval.1", title="Purchase requisition: 伺服电机", status="pending",
        status_label="Waiting for your decision", link="http://testserver/s/token-1/", link_label="Open",
        locale="en", amount="CNY 12,800.00", fields=[CardField("Number", "PR-2026-0900")],
        actions=[CardAction("approve", "Approve", "primary"), CardAction("reject", "Reject", "danger")],
    )
    data.update(extra)
    return Card(**data)


def agora(route) -> tuple[AgoraAdapter, FakeApi]:
    module._tokens.clear()
    api = FakeApi(route if callable(route) else (lambda request: answer(route[request.url.path.split("/portal")[-1]])))
    return AgoraAdapter(transport=api.transport, **CONFIG), api


def callback_body(name: str, *, secret: str = SECRET, at: float | None = None, **changes) -> bytes:
    data = copy.deepcopy(json.loads((FIXTURES / f"{name}.json").read_text())["body"])
    data["callId"] += f"-{uuid.uuid4().hex[:8]}"  # each callId is accepted once
    data.update(changes)
    data["timestamp"] = int((time.time() if at is None else at) * 1000)
    data["security"] = security(data["callId"], secret, data["timestamp"])
    return json.dumps(data, ensure_ascii=False).encode()


# --- tokens ---------------------------------------------------------------------------------------

def test_app_and_user_tokens_match_agoras_published_vectors():
    # AgoraIO/Tools DynamicKey/AgoraDynamicKey/python3/test/AccessToken2Test.py (salt 1, issued 1111111).
    app = build_chat_token(APP_ID, CERT, 600, issue_ts=1111111, salt=1)
    assert app == ("007eJxTYNDNaz3snC8huEfHWdz6s98qltq4zqy9fl99Uh0FDvy6F6DAYGlu4OxobJqSamaQbGJiZmKalJSYapFoZGhqYGa"
                   "YZGzs/kWAIYKJgYGRAYRZgZgJzGdgAACt8hhr")
    user = build_chat_token(APP_ID, CERT, 600, user_id="2882341273", issue_ts=1111111, salt=1)
    assert user == ("007eJxTYNAIsnbS3v/A5t2TC6feR15r+6cq8bqAvfaW+tk/Vzz+p6xTYLA0N3B2NDZNSTUzSDYxMTMxTUpKTLVINDI0NTA"
                    "zTDI2dv8iwBDBxMDAyADCrEDMCOZzMRhZWBgZmxgamRsDAB+lHrg=")


def test_a_malformed_certificate_is_a_permanent_error():
    adapter, _ = agora({})
    adapter.certificate = "not-hex"
    with pytest.raises(TransportError) as caught:
        adapter.app_token()
    assert caught.value.permanent


# --- sending --------------------------------------------------------------------------------------

def test_send_card_is_a_custom_message_with_the_card():
    adapter, api = agora({"/messages/users": "send_users_200"})
    sent = adapter.send_card("li.si", make_card(), idempotency_key="d:1:agora")
    assert sent.message_id == "users:li.si 1029457500870543736"
    request = api.requests[0]
    assert str(request.url) == "https://a41.chat.agora.io/61717166/portal/messages/users"
    assert request.headers["authorization"].startswith("Bearer 007")
    body = api.json()
    assert body["from"] == "portal-bot" and body["to"] == ["li.si"] and body["type"] == "custom"
    assert body["body"]["customEvent"] == "portal_card"
    exts = body["body"]["customExts"]
    assert len(exts) <= 16 and all(isinstance(v, str) for v in exts.values())
    assert json.loads(exts["card"]) == make_card().to_dict()
    assert exts["actions"] == "approve,reject" and exts["link"] == "http://testserver/s/token-1/"
    assert len(request.content) <= 5 * 1024


def test_an_oversized_card_drops_fields_rather_than_fail():
    adapter, api = agora({"/messages/users": "send_users_200"})
    card = make_card(fields=[CardField(f"Line {i}", "伺服电机 " * 20) for i in range(40)])
    adapter.send_card("li.si", card, idempotency_key="k")
    sent = json.loads(api.json()["body"]["customExts"]["card"])
    assert 0 < len(sent["fields"]) < 40 and len(api.requests[-1].content) <= 5 * 1024


def test_update_sends_a_replacement_that_names_the_first_message():
    adapter, api = agora({"/messages/users": "send_users_update_200"})
    adapter.update_card("li.si", "users:li.si 1029457500870543736", make_card(status="approved", actions=[]))
    body = api.json()
    assert body["body"]["customEvent"] == "portal_card_update"
    assert body["body"]["customExts"]["card_id"] == "1029457500870543736"
    assert body["body"]["customExts"]["actions"] == ""


def test_recall():
    adapter, api = agora({"/messages/msg_recall": "msg_recall_200"})
    adapter.delete_message("li.si", "users:li.si 1029457500870543736")
    assert api.json() == {"msg_id": "1029457500870543736", "to": "li.si", "from": "portal-bot", "chat_type": "chat"}


def test_create_group_and_add_members_and_a_card_and_widget_in_it():
    adapter, api = agora({"/chatgroups": "chatgroups_create_200", "/chatgroups/66016455491585/users":
                          "chatgroups_add_users_200", "/messages/chatgroups": "send_chatgroups_200"})
    members = [f"u{i}" for i in range(130)]
    group = adapter.create_group("Low stock: 伺服电机", members, idempotency_key="war-room-1")
    assert group.chat_id == "66016455491585"
    created = api.json(0)
    assert created["owner"] == "portal-bot" and created["public"] is False and created["members"] == members[:100]
    assert api.paths()[1] == "/61717166/portal/chatgroups/66016455491585/users"
    assert api.json(1) == {"usernames": members[100:130]}
    adapter.send_card_to_chat("184524748161025", make_card(), idempotency_key="k")
    assert api.json()["to"] == ["184524748161025"] and api.paths()[-1].endswith("/messages/chatgroups")
    adapter.post_widget("184524748161025", "Stock", "http://testserver/w/stock/")
    assert api.json()["body"] == {"customEvent": "portal_widget",
                                  "customExts": {"title": "Stock", "url": "http://testserver/w/stock/"}}


def test_a_group_needs_a_real_owner():
    adapter, _ = agora({})
    adapter.bot_user = "admin"
    with pytest.raises(TransportError):
        adapter.create_group("x", [], idempotency_key="k")


# --- errors ---------------------------------------------------------------------------------------

def test_an_expired_token_is_renewed_once():
    answers = iter([answer("unauthorized_401"), answer("send_users_200")])
    adapter, api = agora(lambda request: next(answers))
    adapter.send_card("li.si", make_card(), idempotency_key="k")
    assert len(api.requests) == 2
    assert api.requests[0].headers["authorization"] != api.requests[1].headers["authorization"]


def test_a_token_refused_twice_is_permanent():
    adapter, api = agora(lambda request: answer("unauthorized_401"))
    with pytest.raises(TransportError) as caught:
        adapter.send_card("li.si", make_card(), idempotency_key="k")
    assert caught.value.permanent and "AGORA_APP_CERTIFICATE" in str(caught.value) and len(api.requests) == 2


def test_429_is_transient_with_retry_after():
    error = error_from_response(answer("reach_limit_429"), "send")
    assert not error.permanent and error.retry_after == 2 and error.error == "reach_limit"


@pytest.mark.parametrize("name", ["user_not_found_404", "too_large_413", "forbidden_403"])
def test_refusals_are_permanent(name):
    response = answer(name)
    error = error_from_response(response, "send")
    assert error.permanent and response.json()["error"] in str(error)


def test_server_errors_and_timeouts_are_transient():
    assert not error_from_response(answer("server_error_503"), "send").permanent

    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    adapter, _ = agora(slow)
    with pytest.raises(TransportError) as caught:
        adapter.send_card("li.si", make_card(), idempotency_key="k")
    assert not caught.value.permanent


def test_ids():
    assert parse_message_id("chatgroups:184524748161025 1029544257947437432") == (
        "chatgroups", "184524748161025", "1029544257947437432")
    with pytest.raises(TransportError):
        parse_message_id("li.si 1029")


# --- callbacks ------------------------------------------------------------------------------------

def test_the_documented_security_is_md5_of_call_id_secret_timestamp():
    import hashlib

    assert security("A#B_1", "s", 1642585154644) == hashlib.md5(b"A#B_1s1642585154644").hexdigest()  # noqa: S324


def test_a_good_callback_is_a_button_press():
    adapter, _ = agora({})
    event = adapter.parse_callback({}, callback_body("callback_card_action"), {})
    assert (event.kind, event.sender, event.tenant) == ("card_action", "li.si", "XXXX#XXXX")
    assert (event.message_id, event.action_id) == ("users:li.si 1029457500870543736", "approve")


def test_text_and_other_events():
    adapter, _ = agora({})
    event = adapter.parse_callback({}, callback_body("callback_text"), {})
    assert (event.kind, event.text) == ("message", "库存 伺服电机")
    assert adapter.parse_callback({}, callback_body("callback_login"), {}).kind == "ignored"


@pytest.mark.parametrize("case", ["wrong_secret", "expired", "missing", "not_json"])
def test_bad_callbacks_are_rejected(case):
    adapter, _ = agora({})
    if case == "wrong_secret":
        body = callback_body("callback_card_action", secret="guess")
    elif case == "expired":
        body = callback_body("callback_card_action", at=time.time() - 301)
    elif case == "missing":
        body = json.dumps({"eventType": "chat", "from": "li.si"}).encode()
    else:
        body = b"<xml/>"
    with pytest.raises(CallbackRejected):
        adapter.parse_callback({}, body, {})


def test_the_signature_does_not_cover_the_body_so_a_call_id_is_accepted_once():
    # Agora's documented scheme signs callId + secret + timestamp only. A captured signature with a
    # changed body therefore verifies; refusing a callId seen before limits that to a race with the
    # real request (and HTTPS keeps it from being captured at all).
    adapter, _ = agora({})
    body = callback_body("callback_card_action", callId=f"XXXX#XXXX_replay-{uuid.uuid4().hex}")
    assert adapter.parse_callback({}, body, {}).action_id == "approve"
    with pytest.raises(CallbackRejected, match="replayed"):
        adapter.parse_callback({}, body.replace(b'"approve"', b'"reject"'), {})


def test_without_a_callback_secret_nothing_is_accepted():
    adapter, _ = agora({})
    adapter.callback_secret = ""
    with pytest.raises(CallbackRejected):
        adapter.parse_callback({}, callback_body("callback_card_action", secret=""), {})


# --- through the portal ---------------------------------------------------------------------------

@pytest.fixture
def agora_portal(settings, monkeypatch, users):
    settings.IM_ADAPTERS = ["devinbox", "agora"]
    for name, value in CONFIG.items():
        setattr(settings, f"AGORA_{name.upper()}", value)
    settings.IM_RATE_LIMITS = {}
    module._tokens.clear()
    ImIdentity.objects.create(user=users["li.si"], platform="agora", tenant="XXXX#XXXX", external_id="li.si")
    sends = iter(["send_users_200", "send_users_update_200"])

    def route(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/messages/users"), request.url
        body = json.loads(request.content)
        if body["type"] == "txt":
            return answer("send_users_200")
        return answer(next(sends))

    api = FakeApi(route)
    monkeypatch.setattr(AgoraAdapter, "default_transport", api.transport)
    return api


def test_an_approval_reaches_agora_and_a_card_action_decides(demo, users, agora_portal, send_event, client,
                                                             committed):
    api = agora_portal
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0981")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0981")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="agora")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    assert MessageRef.objects.get(delivery=delivery).message_id == "users:li.si 1029457500870543736"

    with committed():
        response = client.post("/api/im/agora/callback", data=callback_body("callback_card_action"),
                               content_type="application/json")
    assert response.status_code == 200
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED
    assert Decision.objects.get(document=document).actor == users["li.si"]
    kinds = [(json.loads(r.content)["type"], json.loads(r.content)["body"].get("customEvent")) for r in api.requests]
    assert ("custom", "portal_card_update") in kinds and ("txt", None) in kinds
    update = next(json.loads(r.content) for r in api.requests if b"portal_card_update" in r.content)
    assert update["body"]["customExts"]["card_id"] == "1029457500870543736"
    assert json.loads(update["body"]["customExts"]["card"])["status"] == "approved"


def test_a_forged_callback_is_401_and_changes_nothing(demo, users, agora_portal, send_event, client, committed):
    send_event("erp.approval.requested", approval_requested("PR-2026-0982"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0982")
    with committed():
        response = client.post("/api/im/agora/callback", data=callback_body("callback_card_action", secret="x"),
                               content_type="application/json")
    assert response.status_code == 401
    assert not Decision.objects.filter(document=document).exists()
