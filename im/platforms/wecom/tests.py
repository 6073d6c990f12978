"""WeCom by contract: crypto against WeCom's own sample, requests asserted against the documented API,
errors mapped from documented answers, and the portal's loop through the callback view."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache

from approvals.models import ApprovalDocument, Decision
from im.cards import CardField
from im.models import Delivery, MessageRef
from im.platforms.base import CallbackRejected, TransportError, Unsupported
from im.platforms.contract import FakePlatform, clean_cache, make_card  # noqa: F401 - clean_cache is autouse
from im.platforms.wecom import render
from im.platforms.wecom.adapter import WeComAdapter, WeComConfig, event_from_message
from im.platforms.wecom.crypto import MsgCrypt, check_timestamp
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = json.loads((FIXTURES / "callback_official_sample.json").read_text())
API = "https://qyapi.weixin.qq.com/cgi-bin"
CONFIG = WeComConfig(corp_id=SAMPLE["corp_id"], secret="wecom-secret", agent_id="1000002", token=SAMPLE["token"],
                     aes_key=SAMPLE["encoding_aes_key"])



@pytest.fixture
def wecom() -> FakePlatform:
    platform = FakePlatform(FIXTURES)
    platform.answer("GET", f"{API}/gettoken", "gettoken_200")
    return platform


def adapter_for(platform: FakePlatform) -> WeComAdapter:
    return WeComAdapter(CONFIG, transport=platform.transport())


# --- crypto, against WeCom's own sample -------------------------------------------------------------

def test_the_documented_url_check_verifies_and_decrypts():
    crypt = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    check = SAMPLE["verify_url"]
    crypt.verify(check["msg_signature"], check["timestamp"], check["nonce"], check["echostr"])
    assert crypt.decrypt(check["echostr"]).decode() == check["echo"]


def test_the_documented_message_verifies_and_decrypts():
    crypt = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    message = SAMPLE["message"]
    encrypted = message["body"].split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    crypt.verify(message["msg_signature"], message["timestamp"], message["nonce"], encrypted)
    assert crypt.decrypt(encrypted).decode() == message["plaintext"]


def test_encrypt_round_trip_pads_to_32_bytes():
    crypt = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    for size in (0, 1, 11, 12, 44, 500):
        encrypted = crypt.encrypt(b"x" * size)
        assert len(__import__("base64").b64decode(encrypted)) % 32 == 0
        assert crypt.decrypt(encrypted) == b"x" * size


def test_a_bad_signature_is_rejected():
    crypt = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    check = SAMPLE["verify_url"]
    with pytest.raises(CallbackRejected) as caught:
        crypt.verify("0" * 40, check["timestamp"], check["nonce"], check["echostr"])
    assert caught.value.status == 401
    with pytest.raises(CallbackRejected):  # the right signature for another nonce
        crypt.verify(check["msg_signature"], check["timestamp"], "47744684", check["echostr"])


def test_a_message_for_another_corp_is_rejected():
    theirs = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], "wwanothercorp0000")
    ours = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    with pytest.raises(CallbackRejected, match="another receive id"):
        ours.decrypt(theirs.encrypt(b"<xml/>"))


def test_garbage_ciphertext_is_a_400():
    crypt = MsgCrypt(SAMPLE["token"], SAMPLE["encoding_aes_key"], SAMPLE["corp_id"])
    with pytest.raises(CallbackRejected) as caught:
        crypt.decrypt("bm90IGVuY3J5cHRlZA==")
    assert caught.value.status == 400


def test_an_old_timestamp_is_a_replay():
    check_timestamp(str(int(time.time()) - 10), 300)
    with pytest.raises(CallbackRejected, match="window"):
        check_timestamp(str(int(time.time()) - 301), 300)
    with pytest.raises(CallbackRejected):
        check_timestamp("yesterday", 300)


def test_unconfigured_callbacks_are_refused():
    with pytest.raises(CallbackRejected) as caught:
        MsgCrypt("", "", "")
    assert caught.value.status == 404
    with pytest.raises(CallbackRejected):
        MsgCrypt("t", "tooshort", "corp")


# --- parse_callback ---------------------------------------------------------------------------------

def test_parse_callback_answers_the_url_check_with_the_echo():
    check = SAMPLE["verify_url"]
    event = WeComAdapter(CONFIG).parse_callback({}, b"", {k: check[k] for k in ("msg_signature", "timestamp",
                                                                                 "nonce", "echostr")})
    assert event.kind == "url_verification" and event.reply == check["echo"]


def test_parse_callback_reads_the_documented_message_when_its_time_is_now(settings):
    message = SAMPLE["message"]
    settings.IM_CALLBACK_MAX_AGE = int(time.time()) - int(message["timestamp"]) + 60  # the sample is from 2016
    event = WeComAdapter(CONFIG).parse_callback({}, message["body"].encode(), {
        "msg_signature": message["msg_signature"], "timestamp": message["timestamp"], "nonce": message["nonce"]})
    assert (event.kind, event.sender, event.text, event.tenant) == ("message", "ChenJiaShun", "你好", SAMPLE["corp_id"])


def test_parse_callback_refuses_the_documented_message_as_a_replay_today():
    message = SAMPLE["message"]
    with pytest.raises(CallbackRejected, match="window"):
        WeComAdapter(CONFIG).parse_callback({}, message["body"].encode(), {
            "msg_signature": message["msg_signature"], "timestamp": message["timestamp"], "nonce": message["nonce"]})


def signed_callback(plaintext: str, *, crypt: MsgCrypt | None = None, timestamp: str | None = None) -> tuple[bytes,
                                                                                                              dict]:
    crypt = crypt or MsgCrypt(CONFIG.token, CONFIG.aes_key, CONFIG.corp_id)
    timestamp = timestamp or str(int(time.time()))
    encrypted = crypt.encrypt(plaintext.encode())
    body = (f"<xml><ToUserName><![CDATA[{CONFIG.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[1000002]]></AgentID></xml>").encode()
    return body, {"msg_signature": crypt.signature(timestamp, "1597212914", encrypted), "timestamp": timestamp,
                  "nonce": "1597212914"}


def test_a_button_press_is_a_card_action_and_keeps_the_new_response_code():
    plaintext = (FIXTURES / "template_card_event.xml").read_text().replace("TASK_ID", "portal-abc")
    body, query = signed_callback(plaintext)
    event = WeComAdapter(CONFIG).parse_callback({}, body, query)
    assert (event.kind, event.sender, event.message_id, event.action_id) == ("card_action", "lisi", "portal-abc",
                                                                            "approve")
    assert event.reply == ""  # WeCom wants an empty answer
    assert cache.get("im:wecom:response-code:portal-abc") == "ResponseCode-from-callback"


def test_a_doctype_is_refused_before_parsing():
    body = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    with pytest.raises(CallbackRejected) as caught:
        WeComAdapter(CONFIG).parse_callback({}, body, {"msg_signature": "x", "timestamp": str(int(time.time())),
                                                       "nonce": "1"})
    assert caught.value.status == 400


def test_other_events_are_ignored():
    assert event_from_message({"MsgType": "event", "Event": "enter_agent", "FromUserName": "lisi"},
                              tenant="c").kind == "ignored"


# --- sending ----------------------------------------------------------------------------------------

def test_send_card_posts_a_button_card_with_a_task_id_and_keeps_the_response_code(wecom):
    wecom.answer("POST", f"{API}/message/send", "message_send_200")
    sent = adapter_for(wecom).send_card("lisi", make_card(), idempotency_key="approval.1:7:wecom")
    request = wecom.calls("/message/send")[0]
    assert request.url.params["access_token"] == "accesstoken000001"
    body = wecom.body(request)
    assert body["touser"] == "lisi" and body["agentid"] == 1000002 and body["msgtype"] == "template_card"
    assert body["enable_duplicate_check"] == 1
    card = body["template_card"]
    assert card["card_type"] == "button_interaction" and card["task_id"] == sent.message_id
    assert sent.message_id == render.task_id_for("approval.1:7:wecom")
    assert [(b["key"], b["text"]) for b in card["button_list"]] == [("approve", "批准"), ("reject", "驳回")]
    assert card["card_action"] == {"type": 1, "url": "http://testserver/s/token-1/"}
    assert {"keyname": "申请人", "value": "zhang.san"} in card["horizontal_content_list"]
    assert cache.get(f"im:wecom:response-code:{sent.message_id}") == "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz"
    assert wecom.calls("/gettoken")[0].url.params["corpid"] == CONFIG.corp_id


def test_the_token_is_fetched_once_and_cached(wecom):
    wecom.answer("POST", f"{API}/message/send", "message_send_200")
    adapter = adapter_for(wecom)
    adapter.send_card("lisi", make_card(), idempotency_key="a")
    adapter.send_card("lisi", make_card(), idempotency_key="b")
    assert len(wecom.calls("/gettoken")) == 1


def test_a_rejected_token_is_fetched_again_once(wecom):
    wecom.answer("POST", f"{API}/message/send", "access_token_expired_42001", "message_send_200")
    adapter_for(wecom).send_card("lisi", make_card(), idempotency_key="a")
    assert len(wecom.calls("/gettoken")) == 2 and len(wecom.calls("/message/send")) == 2


def test_a_card_without_actions_is_a_textcard(wecom):
    wecom.answer("POST", f"{API}/message/send", "message_send_200")
    sent = adapter_for(wecom).send_card("lisi", make_card(actions=False, link=""), idempotency_key="n")
    body = wecom.body(wecom.calls("/message/send")[0])
    assert body["msgtype"] == "textcard" and body["textcard"]["url"] == "http://testserver/"
    assert sent.message_id.startswith("textcard:")
    with pytest.raises(TransportError) as caught:
        adapter_for(wecom).update_card("lisi", sent.message_id, make_card())
    assert caught.value.permanent


def test_rendering_stays_within_the_documented_limits():
    long = make_card(title="标" * 100, fields=[CardField(f"字段{i}很长很长", "值" * 100) for i in range(9)],
                     note="备注" * 200)
    card = render.template_card(long, "t")
    assert len(card["main_title"]["title"]) <= 26 and len(card["horizontal_content_list"]) == 6
    assert all(len(h["keyname"]) <= 5 and len(h["value"]) <= 26 for h in card["horizontal_content_list"])
    assert len(card["sub_title_text"]) <= 112
    text = render.textcard(long)
    assert len(text["title"].encode()) <= 128 and len(text["description"].encode()) <= 512


@pytest.mark.parametrize(("fixture", "permanent", "retry_after"), [
    ("message_send_freq_limit_45009", False, 60.0),
    ("message_send_concurrent_limit_45033", False, 60.0),
    ("system_busy_-1", False, None),
    ("message_send_all_invalid_81013", True, None),
    ("message_send_ip_not_allowed_60020", True, None),
])
def test_documented_errors_are_mapped(wecom, fixture, permanent, retry_after):
    wecom.answer("POST", f"{API}/message/send", fixture)
    with pytest.raises(TransportError) as caught:
        adapter_for(wecom).send_card("lisi", make_card(), idempotency_key="k")
    assert caught.value.permanent is permanent and caught.value.retry_after == retry_after
    errmsg = json.loads((FIXTURES / f"{fixture}.json").read_text())["body"]["errmsg"]
    assert errmsg in str(caught.value)


def test_an_unknown_member_is_permanent_even_with_errcode_0(wecom):
    wecom.answer("POST", f"{API}/message/send", "message_send_invaliduser_200")
    with pytest.raises(TransportError, match="userid1") as caught:
        adapter_for(wecom).send_card("userid1", make_card(), idempotency_key="k")
    assert caught.value.permanent


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_network_failures_are_transient(wecom, failure):
    wecom.answer("POST", f"{API}/message/send", failure)
    with pytest.raises(TransportError) as caught:
        adapter_for(wecom).send_card("lisi", make_card(), idempotency_key="k")
    assert not caught.value.permanent


def test_a_5xx_is_transient(wecom):
    wecom.answer("POST", f"{API}/message/send", httpx.Response(502, text="bad gateway"))
    with pytest.raises(TransportError) as caught:
        adapter_for(wecom).send_card("lisi", make_card(), idempotency_key="k")
    assert not caught.value.permanent


# --- updating ---------------------------------------------------------------------------------------

def test_a_decided_card_turns_its_buttons_into_the_outcome_with_the_latest_response_code(wecom):
    wecom.answer("POST", f"{API}/message/update_template_card", "update_template_card_200")
    cache.set("im:wecom:response-code:portal-abc", "code-2", 60)
    decided = make_card(actions=False, status="approved", status_label="已由 李四 批准")
    adapter_for(wecom).update_card("lisi", "portal-abc", decided)
    body = wecom.body(wecom.calls("/update_template_card")[0])
    assert body == {"userids": ["lisi"], "agentid": 1000002, "response_code": "code-2",
                    "button": {"replace_name": "已由 李四 批准"}}
    assert cache.get("im:wecom:response-code:portal-abc") is None  # a code works once


def test_a_card_still_open_is_replaced_by_the_new_card(wecom):
    wecom.answer("POST", f"{API}/message/update_template_card", "update_template_card_200")
    cache.set("im:wecom:response-code:portal-abc", "code-3", 60)
    adapter_for(wecom).update_card("lisi", "portal-abc", make_card(note="金额已变更"))
    body = wecom.body(wecom.calls("/update_template_card")[0])
    assert body["template_card"]["task_id"] == "portal-abc" and body["response_code"] == "code-3"


def test_without_a_response_code_an_update_is_permanent(wecom):
    with pytest.raises(TransportError, match="72 hours") as caught:
        adapter_for(wecom).update_card("lisi", "portal-gone", make_card())
    assert caught.value.permanent and not wecom.requests


# --- groups, widgets, code exchange -----------------------------------------------------------------

def test_create_group_with_our_own_chat_id_then_add_members_and_send(wecom):
    wecom.answer("POST", f"{API}/appchat/create", "appchat_create_200")
    wecom.answer("POST", f"{API}/appchat/update", "appchat_ok_200")
    wecom.answer("POST", f"{API}/appchat/send", "appchat_ok_200")
    adapter = adapter_for(wecom)
    chat = adapter.create_group("伺服电机缺货", ["lisi", "zhangsan"], idempotency_key="stock.9")
    again = adapter.create_group("伺服电机缺货", ["lisi", "zhangsan"], idempotency_key="stock.9")
    assert chat == again and len(chat.chat_id) <= 32 and chat.chat_id.isalnum()
    create = wecom.body(wecom.calls("/appchat/create")[0])
    assert create == {"name": "伺服电机缺货", "owner": "lisi", "userlist": ["lisi", "zhangsan"], "chatid": chat.chat_id}
    adapter.add_members(chat.chat_id, ["wangwu"])
    assert wecom.body(wecom.calls("/appchat/update")[0]) == {"chatid": chat.chat_id, "add_user_list": ["wangwu"]}
    adapter.send_card_to_chat(chat.chat_id, make_card(), idempotency_key="c")
    adapter.post_widget(chat.chat_id, "库存: 伺服电机", "https://portal.example/w/stock/?t=x")
    sends = [wecom.body(r) for r in wecom.calls("/appchat/send")]
    assert [s["msgtype"] for s in sends] == ["textcard", "textcard"]
    assert sends[1]["textcard"]["url"] == "https://portal.example/w/stock/?t=x"


def test_a_group_of_one_is_unsupported(wecom):
    with pytest.raises(Unsupported):
        adapter_for(wecom).create_group("x", ["lisi"], idempotency_key="k")


def test_threads_are_unsupported():
    with pytest.raises(Unsupported):
        WeComAdapter(CONFIG).reply_in_thread("lisi", "t", "x")


def test_code_exchange_delegates_to_sso_im_login(db, monkeypatch, settings):
    from sso.im_login import base

    settings.SOCIALACCOUNT_PROVIDERS = {"wecom": {"APPS": [{"client_id": CONFIG.corp_id, "secret": "s",
                                                            "settings": {"agent_id": "1000002"}}]}}
    platform = FakePlatform(FIXTURES)
    platform.answer("GET", f"{API}/gettoken", "gettoken_200")
    platform.answer("GET", f"{API}/auth/getuserinfo",
                    httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "userid": "lisi"}))
    monkeypatch.setattr(base, "http_transport", platform.transport())
    assert WeComAdapter(CONFIG).exchange_code("CODE") == "lisi"
    assert platform.calls("/auth/getuserinfo")[0].url.params["code"] == "CODE"


# --- through the portal -----------------------------------------------------------------------------

@pytest.fixture
def wecom_portal(settings, monkeypatch, users, wecom):
    settings.IM_ADAPTERS = ["devinbox", "wecom"]
    settings.IM_RATE_LIMITS = {}
    settings.WECOM_TOKEN, settings.WECOM_AES_KEY = CONFIG.token, CONFIG.aes_key
    settings.SOCIALACCOUNT_PROVIDERS = {"wecom": {"APPS": [{"client_id": CONFIG.corp_id, "secret": "wecom-secret",
                                                            "settings": {"agent_id": "1000002"}}]}}
    ImIdentity.objects.create(user=users["li.si"], platform="wecom", tenant=CONFIG.corp_id, external_id="lisi")
    wecom.answer("POST", f"{API}/message/send", "message_send_200")
    wecom.answer("POST", f"{API}/message/update_template_card", "update_template_card_200")
    monkeypatch.setattr(WeComAdapter, "default_transport", wecom.transport())
    return wecom


def test_an_approval_reaches_wecom_and_a_button_press_decides(demo, users, wecom_portal, send_event, client,
                                                              committed):
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0981")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0981")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="wecom")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    task_id = MessageRef.objects.get(delivery=delivery).message_id

    plaintext = (FIXTURES / "template_card_event.xml").read_text().replace("TASK_ID", task_id)
    body, query = signed_callback(plaintext)
    with committed():
        response = client.post(f"/api/im/wecom/callback?{httpx.QueryParams(query)}", data=body,
                               content_type="text/xml")
    assert response.status_code == 200 and response.content == b""
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED
    assert Decision.objects.get(document=document).actor == users["li.si"]
    update = wecom_portal.body(wecom_portal.calls("/update_template_card")[-1])
    assert update["response_code"] == "ResponseCode-from-callback" and update["userids"] == ["lisi"]
    assert "button" in update  # the buttons became the outcome
    told = wecom_portal.body(wecom_portal.calls("/message/send")[-1])
    assert told["msgtype"] == "text" and told["touser"] == "lisi" and told["text"]["content"]


def test_a_forged_press_is_401_problem_json_and_changes_nothing(demo, users, wecom_portal, send_event, client,
                                                               committed):
    send_event("erp.approval.requested", approval_requested("PR-2026-0982"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0982")
    task_id = MessageRef.objects.get(delivery__topic=document.topic, platform="wecom").message_id
    plaintext = (FIXTURES / "template_card_event.xml").read_text().replace("TASK_ID", task_id)
    forged = MsgCrypt("forged-token", CONFIG.aes_key, CONFIG.corp_id)
    body, query = signed_callback(plaintext, crypt=forged)
    with committed():
        response = client.post(f"/api/im/wecom/callback?{httpx.QueryParams(query)}", data=body,
                               content_type="text/xml")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.PENDING and not Decision.objects.filter(document=document)


def test_the_url_check_is_answered_with_a_get(wecom_portal, client, settings):
    settings.WECOM_TOKEN, settings.WECOM_AES_KEY = SAMPLE["token"], SAMPLE["encoding_aes_key"]
    check = SAMPLE["verify_url"]
    query = {k: check[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}
    response = client.get("/api/im/wecom/callback", query)
    assert response.status_code == 200 and response.content.decode() == check["echo"]


# --- recall (retention) ------------------------------------------------------------------------------

def test_a_sent_card_is_recalled_with_the_msgid_the_send_answered(wecom):
    wecom.answer("POST", f"{API}/message/send", "message_send_200")
    wecom.answer("POST", f"{API}/message/recall", "message_recall_200")
    adapter = adapter_for(wecom)
    sent = adapter.send_card("lisi", make_card(), idempotency_key="approval.1:8:wecom")
    assert sent.recall_id == "xxxx"  # message/send's msgid, not the card's task id
    adapter.delete_message("lisi", sent.message_id, recall_id=sent.recall_id)
    assert wecom.body(wecom.calls("/message/recall")[0]) == {"msgid": "xxxx"}


def test_a_message_without_msgid_cannot_be_recalled(wecom):
    with pytest.raises(Unsupported):
        adapter_for(wecom).delete_message("lisi", "tc-abc")
    assert not wecom.calls("/message/recall")
