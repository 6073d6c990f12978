"""Feishu/Lark by contract: the documented decryption example, signatures, requests asserted against the
documented API, errors mapped from documented answers, and the portal's loop through the callback view."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from approvals.models import ApprovalDocument, Decision
from im.cards import CardField
from im.models import Delivery, MessageRef
from im.platforms.base import CallbackRejected, TransportError
from im.platforms.contract import FakePlatform, clean_cache, make_card  # noqa: F401 - clean_cache is autouse
from im.platforms.feishu import crypto, render
from im.platforms.feishu.adapter import FeishuAdapter, FeishuConfig, uuid_for
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
API = "https://open.feishu.cn/open-apis"
CONFIG = FeishuConfig(app_id="cli_a5ca35a685b0x26e", app_secret="feishu-secret", encrypt_key="encrypt-key-123",
                      verification_token="xxxxxx")
OPEN_ID = "ou_3c14f3a59eaf2825dbe25359f15xxxxx"
MESSAGE_ID = "om_dc13264520392913993dd051dba21dcf"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())




@pytest.fixture
def feishu() -> FakePlatform:
    platform = FakePlatform(FIXTURES)
    platform.answer("POST", f"{API}/auth/v3/tenant_access_token/internal", "tenant_access_token_200")
    return platform


def adapter_for(platform: FakePlatform, config: FeishuConfig = CONFIG) -> FeishuAdapter:
    return FeishuAdapter(config, transport=platform.transport())


def signed_request(payload: dict, *, key: str = CONFIG.encrypt_key, timestamp: str | None = None,
                   signing_key: str | None = None) -> tuple[dict, bytes]:
    """What Feishu sends: the encrypted body and the X-Lark headers signed over it."""
    body = json.dumps({"encrypt": crypto.encrypt(key, json.dumps(payload).encode())}).encode()
    timestamp = timestamp or str(int(time.time()))
    headers = {"X-Lark-Request-Timestamp": timestamp, "X-Lark-Request-Nonce": "13341418",
               "X-Lark-Signature": crypto.signature(timestamp, "13341418", signing_key or key, body)}
    return headers, body


# --- crypto -----------------------------------------------------------------------------------------

def test_the_documented_encryption_example_decrypts():
    sample = fixture("callback_encrypt_sample")
    assert crypto.decrypt(sample["encrypt_key"], sample["encrypt"]).decode() == sample["plaintext"]


def test_encrypt_round_trip():
    for text in (b"", b"{}", "审批".encode() * 50):
        assert crypto.decrypt("k", crypto.encrypt("k", text)) == text


def test_signature_is_sha256_of_timestamp_nonce_key_and_body():
    import hashlib

    body = b'{"encrypt":"abc"}'
    assert crypto.signature("1", "n", "k", body) == hashlib.sha256(b"1nk" + body).hexdigest()
    crypto.verify_signature(crypto.signature("1", "n", "k", body), "1", "n", "k", body)
    with pytest.raises(CallbackRejected):
        crypto.verify_signature(crypto.signature("1", "n", "k", body), "1", "n", "k", body + b" ")


def test_wrong_key_ciphertext_is_rejected():
    with pytest.raises((CallbackRejected, ValueError)):
        json.loads(crypto.decrypt("other key", crypto.encrypt("k", b'{"a": 1}')))


def test_undecryptable_unsigned_bodies_all_look_alike():
    """Bad padding, garbage and a wrong token give the same 401: no padding oracle for unsigned senders."""
    adapter = FeishuAdapter(CONFIG)
    statuses = set()
    for encrypted in ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", crypto.encrypt("other key", b"{}"),
                      crypto.encrypt(CONFIG.encrypt_key, b'{"token": "nope"}')):
        with pytest.raises(CallbackRejected) as caught:
            adapter.parse_callback({}, json.dumps({"encrypt": encrypted}).encode(), {})
        statuses.add(caught.value.status)
    assert statuses == {401}


# --- parse_callback ---------------------------------------------------------------------------------

def test_a_signed_encrypted_button_press_is_a_card_action_answered_with_a_toast():
    headers, body = signed_request(fixture("card_action_trigger"))
    event = FeishuAdapter(CONFIG).parse_callback(headers, body, {})
    assert (event.kind, event.sender, event.message_id, event.action_id) == ("card_action", OPEN_ID, MESSAGE_ID,
                                                                            "approve")
    assert event.tenant == "2df73991750xxxxx" and event.reply["toast"]["type"] == "info"


def test_a_bad_signature_is_rejected():
    headers, body = signed_request(fixture("card_action_trigger"), signing_key="forged")
    with pytest.raises(CallbackRejected) as caught:
        FeishuAdapter(CONFIG).parse_callback(headers, body, {})
    assert caught.value.status == 401


def test_a_missing_signature_is_rejected():
    headers, body = signed_request(fixture("card_action_trigger"))
    del headers["X-Lark-Signature"]
    with pytest.raises(CallbackRejected):
        FeishuAdapter(CONFIG).parse_callback(headers, body, {})


def test_an_old_timestamp_is_a_replay():
    headers, body = signed_request(fixture("card_action_trigger"), timestamp=str(int(time.time()) - 3600))
    with pytest.raises(CallbackRejected, match="window"):
        FeishuAdapter(CONFIG).parse_callback(headers, body, {})


def test_a_wrong_verification_token_is_rejected():
    payload = fixture("card_action_trigger")
    payload["header"]["token"] = "someone-else"
    headers, body = signed_request(payload)
    with pytest.raises(CallbackRejected, match="token"):
        FeishuAdapter(CONFIG).parse_callback(headers, body, {})


def test_plain_callbacks_are_refused_when_an_encrypt_key_is_set():
    body = json.dumps(fixture("card_action_trigger")).encode()
    with pytest.raises(CallbackRejected, match="encrypted"):
        FeishuAdapter(CONFIG).parse_callback({}, body, {})


def test_without_an_encrypt_key_the_verification_token_decides():
    config = FeishuConfig(app_id="a", app_secret="s", verification_token="xxxxxx")
    body = json.dumps(fixture("card_action_trigger")).encode()
    assert FeishuAdapter(config).parse_callback({}, body, {}).kind == "card_action"
    payload = fixture("card_action_trigger")
    payload["header"]["token"] = "nope"
    with pytest.raises(CallbackRejected):
        FeishuAdapter(config).parse_callback({}, json.dumps(payload).encode(), {})


def test_unconfigured_callbacks_are_404():
    with pytest.raises(CallbackRejected) as caught:
        FeishuAdapter(FeishuConfig(app_id="a", app_secret="s")).parse_callback({}, b"{}", {})
    assert caught.value.status == 404


def test_the_url_check_is_answered_with_the_challenge():
    body = json.dumps({"encrypt": crypto.encrypt(CONFIG.encrypt_key,
                                                 json.dumps(fixture("url_verification")).encode())}).encode()
    event = FeishuAdapter(CONFIG).parse_callback({}, body, {})
    assert event.kind == "url_verification" and event.reply == {"challenge": "ajls384kdjx98XX"}


def test_a_group_message_to_the_bot_is_text_without_the_mention():
    headers, body = signed_request(fixture("im_message_receive_v1"))
    event = FeishuAdapter(CONFIG).parse_callback(headers, body, {})
    assert (event.kind, event.sender, event.text) == ("message", OPEN_ID, "应收 项目A 本月")
    assert event.chat_id == "oc_5ce6d572455d361153b7xx51da133945"


def test_not_json_is_400():
    with pytest.raises(CallbackRejected) as caught:
        FeishuAdapter(CONFIG).parse_callback({}, b"<xml/>", {})
    assert caught.value.status == 400


# --- sending and updating ---------------------------------------------------------------------------

def test_send_card_posts_an_interactive_card_to_the_open_id(feishu):
    feishu.answer("POST", f"{API}/im/v1/messages", "messages_create_200")
    sent = adapter_for(feishu).send_card(OPEN_ID, make_card(), idempotency_key="approval.1:7:feishu")
    assert sent.message_id == MESSAGE_ID
    request = feishu.calls("/im/v1/messages")[0]
    assert request.url.params["receive_id_type"] == "open_id"
    assert request.headers["Authorization"] == "Bearer t-caecc734c2e3328a62489fe0648c4b98779515d3"
    body = feishu.body(request)
    assert body["receive_id"] == OPEN_ID and body["msg_type"] == "interactive"
    assert body["uuid"] == uuid_for("inte", "approval.1:7:feishu") and len(body["uuid"]) <= 50
    card = json.loads(body["content"])
    assert card["config"]["update_multi"] is True
    buttons = card["elements"][-1]["actions"]
    assert [b.get("value") for b in buttons] == [{"action": "approve"}, {"action": "reject"}, None]
    assert buttons[-1]["url"] == "http://testserver/s/token-1/"
    token_request = feishu.calls("/tenant_access_token/internal")[0]
    assert feishu.body(token_request) == {"app_id": CONFIG.app_id, "app_secret": CONFIG.app_secret}


def test_update_card_patches_the_message(feishu):
    feishu.answer("PATCH", f"{API}/im/v1/messages/{MESSAGE_ID}", "messages_patch_200")
    adapter_for(feishu).update_card(OPEN_ID, MESSAGE_ID, make_card(actions=False, status="approved",
                                                                   status_label="已由 李四 批准"))
    body = feishu.body(feishu.calls(f"/im/v1/messages/{MESSAGE_ID}")[0])
    card = json.loads(body["content"])
    assert card["header"]["template"] == "green"
    assert card["elements"][0]["text"]["content"] == "已由 李四 批准"
    assert all("value" not in b for b in card["elements"][-1]["actions"])  # only the link is left


def test_a_card_stays_under_30_kb():
    huge = make_card(fields=[CardField(f"字段{i}", "值" * 900) for i in range(40)])
    content = render.card_json(huge)
    assert len(json.dumps(content, ensure_ascii=False).encode()) <= render.MAX_CARD_BYTES
    assert content["elements"][-2]["tag"] == "note"  # says that fields were left out
    giant = make_card(title="T" * 100_000, note="N" * 100_000, fields=[])
    assert len(json.dumps(render.card_json(giant), ensure_ascii=False).encode()) <= render.MAX_CARD_BYTES


@pytest.mark.parametrize(("fixture_name", "permanent", "retry_after"), [
    ("frequency_limit_429", False, 2.0),
    ("message_rate_limit_230020", False, 1.0),
    ("bot_not_visible_230013", True, None),
])
def test_documented_errors_are_mapped(feishu, fixture_name, permanent, retry_after):
    feishu.answer("POST", f"{API}/im/v1/messages", fixture_name)
    with pytest.raises(TransportError) as caught:
        adapter_for(feishu).send_card(OPEN_ID, make_card(), idempotency_key="k")
    assert caught.value.permanent is permanent and caught.value.retry_after == retry_after
    assert fixture(fixture_name)["body"]["msg"] in str(caught.value)


def test_a_rejected_token_is_fetched_again_once(feishu):
    feishu.answer("POST", f"{API}/im/v1/messages", "invalid_token_99991663", "messages_create_200")
    assert adapter_for(feishu).send_card(OPEN_ID, make_card(), idempotency_key="k").message_id == MESSAGE_ID
    assert len(feishu.calls("/tenant_access_token/internal")) == 2


def test_a_token_rejected_twice_is_permanent(feishu):
    feishu.answer("POST", f"{API}/im/v1/messages", "invalid_token_99991663")
    with pytest.raises(TransportError) as caught:
        adapter_for(feishu).send_card(OPEN_ID, make_card(), idempotency_key="k")
    assert caught.value.permanent


@pytest.mark.parametrize("answer", [httpx.Response(503, text="upstream"), httpx.ConnectTimeout("slow")])
def test_5xx_and_network_failures_are_transient(feishu, answer):
    feishu.answer("POST", f"{API}/im/v1/messages", answer)
    with pytest.raises(TransportError) as caught:
        adapter_for(feishu).send_card(OPEN_ID, make_card(), idempotency_key="k")
    assert not caught.value.permanent


# --- groups, threads, widgets -----------------------------------------------------------------------

def test_create_group_add_members_send_into_it_and_post_a_widget(feishu):
    chat_id = "oc_a0553eda9014c201e6969b478895c230"
    feishu.answer("POST", f"{API}/im/v1/chats", "chats_create_200")
    feishu.answer("POST", f"{API}/im/v1/chats/{chat_id}/members", "chats_members_200")
    feishu.answer("POST", f"{API}/im/v1/messages", "messages_create_200")
    adapter = adapter_for(feishu)
    assert adapter.create_group("伺服电机缺货", [OPEN_ID, "ou_2"], idempotency_key="stock.9").chat_id == chat_id
    create = feishu.calls("/im/v1/chats")[0]
    assert create.url.params["user_id_type"] == "open_id" and create.url.params["uuid"] == uuid_for("chat", "stock.9")
    assert feishu.body(create) == {"name": "伺服电机缺货", "user_id_list": [OPEN_ID, "ou_2"], "chat_mode": "group",
                                   "chat_type": "private"}
    adapter.add_members(chat_id, ["ou_3"])
    members = feishu.calls("/members")[0]
    assert members.url.params["member_id_type"] == "open_id" and feishu.body(members) == {"id_list": ["ou_3"]}
    adapter.send_card_to_chat(chat_id, make_card(), idempotency_key="c")
    adapter.post_widget(chat_id, "库存: 伺服电机", "https://portal.example/w/stock/?t=x")
    sends = feishu.calls("/im/v1/messages")
    assert [s.url.params["receive_id_type"] for s in sends] == ["chat_id", "chat_id"]
    widget = json.loads(feishu.body(sends[1])["content"])
    assert widget["elements"][0]["actions"][0]["url"] == "https://portal.example/w/stock/?t=x"


def test_adding_only_unknown_members_is_permanent(feishu):
    feishu.answer("POST", f"{API}/im/v1/chats/oc_1/members", "chats_members_all_invalid_200")
    with pytest.raises(TransportError) as caught:
        adapter_for(feishu).add_members("oc_1", ["ou_84aad35d084aa403a838cf73ee18467"])
    assert caught.value.permanent


def test_reply_in_thread_and_send_text(feishu):
    feishu.answer("POST", f"{API}/im/v1/messages/{MESSAGE_ID}/reply", "messages_create_200")
    feishu.answer("POST", f"{API}/im/v1/messages", "messages_create_200")
    adapter = adapter_for(feishu)
    adapter.reply_in_thread(OPEN_ID, MESSAGE_ID, "已私信给你")
    assert json.loads(feishu.body(feishu.calls("/reply")[0])["content"]) == {"text": "已私信给你"}
    adapter.send_text(OPEN_ID, "你好", idempotency_key="t")
    body = feishu.body(feishu.calls("/im/v1/messages")[-1])
    assert body["msg_type"] == "text" and json.loads(body["content"]) == {"text": "你好"}


# --- through the portal -----------------------------------------------------------------------------

@pytest.fixture
def feishu_portal(settings, monkeypatch, users, feishu):
    settings.IM_ADAPTERS = ["devinbox", "feishu"]
    settings.IM_RATE_LIMITS = {}
    settings.FEISHU_ENCRYPT_KEY, settings.FEISHU_VERIFICATION_TOKEN = CONFIG.encrypt_key, CONFIG.verification_token
    settings.SOCIALACCOUNT_PROVIDERS = {"feishu": {"APPS": [{"client_id": CONFIG.app_id, "secret": CONFIG.app_secret,
                                                             "settings": {"tenant": "2df73991750xxxxx"}}]}}
    ImIdentity.objects.create(user=users["li.si"], platform="feishu", tenant="2df73991750xxxxx", external_id=OPEN_ID)
    feishu.answer("POST", f"{API}/im/v1/messages", "messages_create_200")
    feishu.answer("PATCH", f"{API}/im/v1/messages/{MESSAGE_ID}", "messages_patch_200")
    monkeypatch.setattr(FeishuAdapter, "default_transport", feishu.transport())
    return feishu


def test_an_approval_reaches_feishu_and_a_button_press_decides(demo, users, feishu_portal, send_event, client,
                                                               committed):
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0991")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0991")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="feishu")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    assert MessageRef.objects.get(delivery=delivery).message_id == MESSAGE_ID

    headers, body = signed_request(fixture("card_action_trigger"))
    with committed():
        response = client.post("/api/im/feishu/callback", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200 and "toast" in response.json()
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED
    assert Decision.objects.get(document=document).actor == users["li.si"]
    patch = json.loads(feishu_portal.body(feishu_portal.calls(f"/im/v1/messages/{MESSAGE_ID}")[-1])["content"])
    assert patch["header"]["template"] == "green"
    told = feishu_portal.body([r for r in feishu_portal.requests if r.url.path == "/open-apis/im/v1/messages"][-1])
    assert told["msg_type"] == "text" and told["receive_id"] == OPEN_ID


def test_a_forged_press_is_401_and_changes_nothing(demo, users, feishu_portal, send_event, client, committed):
    send_event("erp.approval.requested", approval_requested("PR-2026-0992"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0992")
    headers, body = signed_request(fixture("card_action_trigger"), signing_key="forged")
    with committed():
        response = client.post("/api/im/feishu/callback", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.PENDING and not Decision.objects.filter(document=document)


def test_the_url_check_is_answered_inline(feishu_portal, client):
    body = json.dumps({"encrypt": crypto.encrypt(CONFIG.encrypt_key,
                                                 json.dumps(fixture("url_verification")).encode())}).encode()
    response = client.post("/api/im/feishu/callback", data=body, content_type="application/json")
    assert response.status_code == 200 and response.json() == {"challenge": "ajls384kdjx98XX"}


def test_a_message_to_the_bot_is_answered_privately_through_the_outbox(demo, users, feishu_portal, client, committed):
    headers, body = signed_request(fixture("im_message_receive_v1"))
    with committed():
        response = client.post("/api/im/feishu/callback", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200
    answer = Delivery.objects.get(recipient=users["li.si"], platform="feishu", topic__startswith="bot.")
    assert answer.status == Delivery.Status.SENT, answer.last_error
    sent = feishu_portal.calls("/im/v1/messages")[-1]
    # To the asker's open_id, never into the group the question was asked in.
    assert sent.url.params["receive_id_type"] == "open_id" and feishu_portal.body(sent)["receive_id"] == OPEN_ID


def test_a_message_from_an_unlinked_user_does_nothing(demo, users, feishu_portal, client, committed):
    payload = fixture("im_message_receive_v1")
    payload["event"]["sender"]["sender_id"]["open_id"] = "ou_stranger"
    headers, body = signed_request(payload)
    with committed():
        assert client.post("/api/im/feishu/callback", data=body, content_type="application/json",
                           headers=headers).status_code == 200
    assert not Delivery.objects.filter(topic__startswith="bot.").exists()


def test_code_exchange_delegates_to_sso_im_login(db, monkeypatch, settings):
    from sso.im_login import base

    settings.SOCIALACCOUNT_PROVIDERS = {"feishu": {"APPS": [{"client_id": CONFIG.app_id, "secret": CONFIG.app_secret,
                                                             "settings": {"tenant": "2df73991750xxxxx"}}]}}
    platform = FakePlatform(FIXTURES)
    platform.answer("POST", f"{API}/authen/v2/oauth/token",
                    httpx.Response(200, json={"code": 0, "access_token": "u-token", "expires_in": 7200}))
    platform.answer("GET", f"{API}/authen/v1/user_info", httpx.Response(200, json={
        "code": 0, "msg": "success", "data": {"open_id": OPEN_ID, "tenant_key": "2df73991750xxxxx", "name": "李四"}}))
    monkeypatch.setattr(base, "http_transport", platform.transport())
    assert FeishuAdapter(CONFIG).exchange_code("CODE") == OPEN_ID
    assert platform.body(platform.calls("/oauth/token")[0])["code"] == "CODE"


# --- recall (retention) ------------------------------------------------------------------------------

def test_delete_message_recalls_it(feishu):
    feishu.answer("DELETE", f"{API}/im/v1/messages/{MESSAGE_ID}", "messages_delete_200")
    adapter_for(feishu).delete_message(OPEN_ID, MESSAGE_ID)
    assert [r.method for r in feishu.calls(f"/im/v1/messages/{MESSAGE_ID}")] == ["DELETE"]


def test_past_the_recall_window_is_permanent(feishu):
    feishu.answer("DELETE", f"{API}/im/v1/messages/{MESSAGE_ID}", "messages_delete_window_passed_230026")
    with pytest.raises(TransportError) as caught:
        adapter_for(feishu).delete_message(OPEN_ID, MESSAGE_ID)
    assert caught.value.permanent and "230026" in str(caught.value)


def test_a_button_that_decides_asks_first():
    from dataclasses import replace

    from im.cards import CardAction

    question = "批准 PR-2026-0900（¥12,800.00）？"
    card = replace(make_card(), actions=[CardAction("approve", "批准", "primary", confirm=question),
                                         CardAction("dismiss", "忽略")])
    content = render.card_json(card)
    [row] = [e for e in content["elements"] if e.get("tag") == "action"]
    approve, dismiss = row["actions"][0], row["actions"][1]
    assert approve["confirm"]["text"]["content"] == question
    assert "confirm" not in dismiss
