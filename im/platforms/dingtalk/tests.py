"""DingTalk by contract: event-subscription crypto and robot signing, requests asserted against the
documented API, errors mapped from documented answers, and the portal's send/update loop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from approvals.models import ApprovalDocument
from approvals.services import decide
from im.cards import CardField
from im.models import Delivery, MessageRef
from im.platforms.base import CallbackRejected, TransportError, Unsupported
from im.platforms.contract import FakePlatform, clean_cache, make_card  # noqa: F401 - clean_cache is autouse
from im.platforms.dingtalk import crypto, render
from im.platforms.dingtalk.adapter import DingTalkAdapter, DingTalkConfig
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
OAPI = "https://oapi.dingtalk.com"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"  # any 43 base64 characters
CONFIG = DingTalkConfig(app_key="dingappkey", app_secret="dingtalk-secret", corp_id="dinge8a565xxxx",
                        agent_id="2335006", token="callback-token", aes_key=AES_KEY)




@pytest.fixture
def dingtalk() -> FakePlatform:
    platform = FakePlatform(FIXTURES)
    platform.answer("GET", f"{OAPI}/gettoken", "gettoken_200")
    return platform


def adapter_for(platform: FakePlatform) -> DingTalkAdapter:
    return DingTalkAdapter(CONFIG, transport=platform.transport())


def event_request(event: dict, *, owner: str = CONFIG.app_key, token: str = CONFIG.token,
                  timestamp: str | None = None) -> tuple[bytes, dict]:
    """What DingTalk's HTTP event push sends: an encrypted body and msg_signature/timestamp/nonce."""
    crypt = crypto.MsgCrypt(token, AES_KEY, owner)
    encrypted = crypt.encrypt(json.dumps(event).encode())
    timestamp = timestamp or str(int(time.time() * 1000))
    return json.dumps({"encrypt": encrypted}).encode(), {
        "msg_signature": crypt.signature(timestamp, "nEXhMP4r", encrypted), "timestamp": timestamp, "nonce": "nEXhMP4r"}


# --- event subscription crypto ----------------------------------------------------------------------

def test_the_url_check_is_answered_with_an_encrypted_success():
    body, query = event_request({"EventType": "check_url"})
    adapter = DingTalkAdapter(CONFIG)
    event = adapter.parse_callback({}, body, query)
    assert event.kind == "url_verification"
    reply = event.reply
    crypt = adapter.crypt()
    crypt.verify(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"])
    assert crypt.decrypt(reply["encrypt"]) == b"success"


def test_other_events_are_acknowledged_and_ignored():
    body, query = event_request({"EventType": "user_add_org", "CorpId": CONFIG.corp_id, "UserId": ["lisi"]})
    event = DingTalkAdapter(CONFIG).parse_callback({}, body, query)
    assert event.kind == "ignored" and event.tenant == CONFIG.corp_id and "encrypt" in event.reply


def test_the_older_corp_id_owner_is_accepted_too():
    body, query = event_request({"EventType": "check_url"}, owner=CONFIG.corp_id)
    assert DingTalkAdapter(CONFIG).parse_callback({}, body, query).kind == "url_verification"


def test_a_message_for_another_app_is_rejected():
    body, query = event_request({"EventType": "check_url"}, owner="dingotherapp")
    with pytest.raises(CallbackRejected, match="another receive id"):
        DingTalkAdapter(CONFIG).parse_callback({}, body, query)


def test_a_bad_signature_is_rejected():
    body, query = event_request({"EventType": "check_url"}, token="forged")
    with pytest.raises(CallbackRejected) as caught:
        DingTalkAdapter(CONFIG).parse_callback({}, body, query)
    assert caught.value.status == 401


def test_an_old_timestamp_is_a_replay():
    body, query = event_request({"EventType": "check_url"}, timestamp=str(int((time.time() - 3600) * 1000)))
    with pytest.raises(CallbackRejected, match="window"):
        DingTalkAdapter(CONFIG).parse_callback({}, body, query)


def test_a_body_without_encrypt_is_400():
    with pytest.raises(CallbackRejected) as caught:
        DingTalkAdapter(CONFIG).parse_callback({}, b"{}", {"msg_signature": "x", "timestamp": "1", "nonce": "n"})
    assert caught.value.status == 400


# --- robot messages ---------------------------------------------------------------------------------

def robot_headers(secret: str = CONFIG.app_secret, timestamp: str | None = None) -> dict:
    timestamp = timestamp or str(int(time.time() * 1000))
    return {"timestamp": timestamp, "sign": crypto.robot_sign(timestamp, secret)}


def test_robot_sign_is_hmac_sha256_of_timestamp_newline_secret():
    expected = base64.b64encode(hmac.new(b"s", b"1577262236757\ns", hashlib.sha256).digest()).decode()
    assert crypto.robot_sign("1577262236757", "s") == expected


def test_a_signed_robot_message_is_text_for_the_bot():
    body = (FIXTURES / "robot_message.json").read_bytes()
    event = DingTalkAdapter(CONFIG).parse_callback(robot_headers(), body, {})
    assert (event.kind, event.sender, event.text) == ("message", "lisi", "库存 伺服电机")
    assert event.chat_id == "cidQXSj4OlswD/MZs+kt2oBTQ==" and event.tenant == "dinge8a565xxxx"


def test_a_forged_or_stale_robot_message_is_rejected():
    body = (FIXTURES / "robot_message.json").read_bytes()
    with pytest.raises(CallbackRejected):
        DingTalkAdapter(CONFIG).parse_callback(robot_headers(secret="forged"), body, {})
    with pytest.raises(CallbackRejected, match="window"):
        DingTalkAdapter(CONFIG).parse_callback(robot_headers(timestamp=str(int((time.time() - 7200) * 1000))), body,
                                               {})


# --- sending and updating ---------------------------------------------------------------------------

def test_send_card_is_an_oa_work_notification_and_its_task_id_the_reference(dingtalk):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/asyncsend_v2", "asyncsend_v2_200")
    sent = adapter_for(dingtalk).send_card("lisi", make_card(), idempotency_key="k")
    assert sent.message_id == "256271667526"
    request = dingtalk.calls("/asyncsend_v2")[0]
    assert request.url.params["access_token"] == "96fc7a7axxx"
    body = dingtalk.body(request)
    assert body["agent_id"] == 2335006 and body["userid_list"] == "lisi"
    oa = body["msg"]["oa"]
    assert body["msg"]["msgtype"] == "oa" and oa["message_url"] == "http://testserver/s/token-1/"
    assert oa["status_bar"] == {"status_value": "等待你审批", "status_bg": "0xFF3296FA"}
    assert {"key": "申请人：", "value": "zhang.san"} in oa["body"]["form"]
    token = dingtalk.calls("/gettoken")[0]
    assert token.url.params["appkey"] == "dingappkey" and token.url.params["appsecret"] == "dingtalk-secret"


def test_update_card_changes_the_status_bar(dingtalk):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/status_bar/update", "status_bar_update_200")
    adapter_for(dingtalk).update_card("lisi", "256271667526", make_card(actions=False, status="approved",
                                                                        status_label="已由 李四 批准"))
    body = dingtalk.body(dingtalk.calls("/status_bar/update")[0])
    assert body == {"agent_id": 2335006, "task_id": 256271667526, "status_value": "已由 李四 批准",
                    "status_bg": "0xFF78C06E"}


def test_one_recipient_per_delivery(dingtalk):
    with pytest.raises(TransportError) as caught:
        adapter_for(dingtalk).send_card("lisi,zhangsan", make_card(), idempotency_key="k")
    assert caught.value.permanent and not dingtalk.requests


def test_rendering_stays_within_limits():
    message = render.oa_message(make_card(title="标" * 300, fields=[CardField(f"f{i}", "v" * 300) for i in range(10)]))
    body = message["oa"]["body"]
    assert len(body["title"]) <= 50 and len(body["form"]) == 6 and all(len(f["value"]) <= 80 for f in body["form"])
    assert "5" in body["content"]  # 11 rows (10 fields and the amount), 6 shown: "5 more fields"


@pytest.mark.parametrize(("fixture", "permanent", "retry_after"), [
    ("asyncsend_v2_limit_90018", False, 5.0),
    ("global_limit_90002", False, 5.0),
    ("invalid_userid_33012", True, None),
    ("auth_error_88_60011", True, None),
])
def test_documented_errors_are_mapped(dingtalk, fixture, permanent, retry_after):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/asyncsend_v2", fixture)
    with pytest.raises(TransportError) as caught:
        adapter_for(dingtalk).send_card("lisi", make_card(), idempotency_key="k")
    assert caught.value.permanent is permanent and caught.value.retry_after == retry_after
    errmsg = json.loads((FIXTURES / f"{fixture}.json").read_text())["body"]["errmsg"]
    assert errmsg in str(caught.value)


def test_a_rejected_token_is_fetched_again_once(dingtalk):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/asyncsend_v2", "token_invalid_40014",
                    "asyncsend_v2_200")
    assert adapter_for(dingtalk).send_card("lisi", make_card(), idempotency_key="k").message_id == "256271667526"
    assert len(dingtalk.calls("/gettoken")) == 2


@pytest.mark.parametrize("answer", [httpx.Response(500, text="oops"), httpx.ConnectError("refused")])
def test_5xx_and_network_failures_are_transient(dingtalk, answer):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/asyncsend_v2", answer)
    with pytest.raises(TransportError) as caught:
        adapter_for(dingtalk).send_card("lisi", make_card(), idempotency_key="k")
    assert not caught.value.permanent


# --- groups and widgets -----------------------------------------------------------------------------

def test_create_group_add_members_send_a_card_and_a_side_panel_widget(dingtalk):
    chat_id = "chat0ea9a04bd2b5fa5f56f2e9c4e1d6a5c1"
    dingtalk.answer("POST", f"{OAPI}/chat/create", "chat_create_200")
    dingtalk.answer("POST", f"{OAPI}/chat/update", "chat_update_200")
    dingtalk.answer("POST", f"{OAPI}/chat/send", "chat_send_200")
    adapter = adapter_for(dingtalk)
    assert adapter.create_group("伺服电机缺货", ["lisi", "zhangsan"], idempotency_key="stock.9").chat_id == chat_id
    adapter.create_group("伺服电机缺货", ["lisi", "zhangsan"], idempotency_key="stock.9")
    assert len(dingtalk.calls("/chat/create")) == 1  # the same key, the same chat
    assert dingtalk.body(dingtalk.calls("/chat/create")[0]) == {"name": "伺服电机缺货", "owner": "lisi",
                                                               "useridlist": ["lisi", "zhangsan"]}
    adapter.add_members(chat_id, ["wangwu"])
    assert dingtalk.body(dingtalk.calls("/chat/update")[0]) == {"chatid": chat_id, "add_useridlist": ["wangwu"]}
    assert adapter.send_card_to_chat(chat_id, make_card(note="[点我](http://evil)"),
                                     idempotency_key="c").message_id == "abcd1234"
    adapter.post_widget(chat_id, "库存: 伺服电机", "https://portal.example/w/stock/?t=x")
    card, widget = (dingtalk.body(r)["msg"] for r in dingtalk.calls("/chat/send"))
    assert card["msgtype"] == "action_card" and "](http://evil)" not in card["action_card"]["markdown"]
    url = widget["action_card"]["single_url"]
    assert url.startswith("dingtalk://dingtalkclient/page/link?")
    query = parse_qs(urlsplit(url).query)
    assert query["url"] == ["https://portal.example/w/stock/?t=x"] and query["pc_slide"] == ["true"]


def test_threads_are_unsupported():
    with pytest.raises(Unsupported):
        DingTalkAdapter(CONFIG).reply_in_thread("lisi", "1", "x")


def test_code_exchange_delegates_to_sso_im_login(db, monkeypatch, settings):
    from sso.im_login import base

    settings.SOCIALACCOUNT_PROVIDERS = {"dingtalk": {"APPS": [{"client_id": "dingappkey", "secret": "s",
                                                               "settings": {"tenant": CONFIG.corp_id}}]}}
    platform = FakePlatform(FIXTURES)
    platform.answer("GET", f"{OAPI}/gettoken", "gettoken_200")
    platform.answer("POST", f"{OAPI}/topapi/v2/user/getuserinfo",
                    httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "result": {"userid": "lisi"}}))
    platform.answer("POST", f"{OAPI}/topapi/v2/user/get",
                    httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "result": {"userid": "lisi"}}))
    monkeypatch.setattr(base, "http_transport", platform.transport())
    assert DingTalkAdapter(CONFIG).exchange_code("AUTHCODE") == "lisi"
    assert platform.body(platform.calls("/getuserinfo")[0]) == {"code": "AUTHCODE"}


# --- through the portal -----------------------------------------------------------------------------

@pytest.fixture
def dingtalk_portal(settings, monkeypatch, users, dingtalk):
    settings.IM_ADAPTERS = ["devinbox", "dingtalk"]
    settings.IM_RATE_LIMITS = {}
    settings.DINGTALK_AGENT_ID, settings.DINGTALK_TOKEN, settings.DINGTALK_AES_KEY = "2335006", CONFIG.token, AES_KEY
    settings.SOCIALACCOUNT_PROVIDERS = {"dingtalk": {"APPS": [{"client_id": CONFIG.app_key, "secret": CONFIG.app_secret,
                                                               "settings": {"tenant": CONFIG.corp_id}}]}}
    ImIdentity.objects.create(user=users["li.si"], platform="dingtalk", tenant=CONFIG.corp_id, external_id="lisi")
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/asyncsend_v2", "asyncsend_v2_200")
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/status_bar/update", "status_bar_update_200")
    monkeypatch.setattr(DingTalkAdapter, "default_transport", dingtalk.transport())
    return dingtalk


def test_an_approval_reaches_dingtalk_and_a_decision_updates_the_status_bar(demo, users, dingtalk_portal,
                                                                             send_event, committed):
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0995")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0995")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="dingtalk")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    assert MessageRef.objects.get(delivery=delivery).message_id == "256271667526"
    with committed():
        decide(users["li.si"], document.pk, "approved", idempotency_key="page:1", via="page")
    update = dingtalk_portal.body(dingtalk_portal.calls("/status_bar/update")[-1])
    assert update["task_id"] == 256271667526 and update["status_bg"] == "0xFF78C06E"


def test_the_url_check_through_the_view(dingtalk_portal, client):
    body, query = event_request({"EventType": "check_url"})
    response = client.post(f"/api/im/dingtalk/callback?{httpx.QueryParams(query)}", data=body,
                           content_type="application/json")
    assert response.status_code == 200 and set(response.json()) == {"msg_signature", "timeStamp", "nonce", "encrypt"}


def test_a_forged_event_is_401_problem_json(dingtalk_portal, client):
    body, query = event_request({"EventType": "check_url"}, token="forged")
    response = client.post(f"/api/im/dingtalk/callback?{httpx.QueryParams(query)}", data=body,
                           content_type="application/json")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"


# --- recall (retention) ------------------------------------------------------------------------------

def test_a_work_notification_is_recalled_by_its_task_id(dingtalk):
    dingtalk.answer("POST", f"{OAPI}/topapi/message/corpconversation/recall", "corpconversation_recall_200")
    adapter_for(dingtalk).delete_message("lisi", "256271667526")
    body = dingtalk.body(dingtalk.calls("/corpconversation/recall")[0])
    assert body == {"agent_id": 2335006, "msg_task_id": 256271667526}


def test_a_group_message_has_no_recall(dingtalk):
    with pytest.raises(Unsupported):
        adapter_for(dingtalk).delete_message("chat123", "msgXYZ==")
    assert not dingtalk.requests
