"""The Slack adapter by contract: documented answers (fixtures/) in an httpx.MockTransport, the
requests the adapter sends asserted, the v0 signature, and the portal's whole loop through Slack."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from approvals.models import ApprovalDocument, Decision
from im.cards import Card, CardAction, CardField
from im.models import Delivery, MessageRef
from im.platforms.base import CallbackRejected, TransportError
from im.platforms.httpfake import FakeApi, recorded
from im.platforms.slack import inbound
from im.platforms.slack.adapter import SlackAdapter, channel_name, parse_message_id
from im.platforms.slack.client import SlackClient, error_from_response
from im.platforms.slack.render import MAX_BLOCKS, OPEN_LINK, render_card
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def answer(name: str) -> httpx.Response:
    return recorded(FIXTURES, name)


def make_card(**extra) -> Card:
    data = dict(
        topic="approval.1", title="Purchase requisition: 伺服电机 <urgent>", status="pending",
        status_label="Waiting for your decision", link="http://testserver/s/token-1/?a=1&b=2", link_label="Open",
        locale="en", amount="CNY 12,800.00",
        fields=[CardField("Number", "PR-2026-0900"), CardField("Requester", "zhang.san & co")],
        actions=[CardAction("approve", "Approve", "primary"), CardAction("reject", "Reject", "danger")],
    )
    data.update(extra)
    return Card(**data)


def slack(routes: dict[str, str]) -> tuple[SlackAdapter, FakeApi]:
    """An adapter whose Web API answers each method with the named fixture."""
    api = FakeApi(lambda request: answer(routes[request.url.path.rsplit("/", 1)[-1]]))
    return SlackAdapter(SlackClient("xoxb-test", transport=api.transport), signing_secret=SECRET), api


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None, content_type: str = "") -> dict:
    timestamp = str(int(time.time() if at is None else at))
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": inbound.signature(secret, timestamp, body)}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def form(payload: dict) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


# --- rendering ------------------------------------------------------------------------------------

def test_the_card_is_block_kit_with_buttons_and_a_link():
    rendered = render_card(make_card())
    blocks = rendered["blocks"]
    assert rendered["text"].startswith("Purchase requisition")
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                                    "text": "Purchase requisition: 伺服电机 <urgent>"}}
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert "*Requester*\nzhang.san &amp; co" in fields and "*Amount*\nCNY 12,800.00" in fields
    buttons = blocks[-1]["elements"]
    assert [(b["action_id"], b.get("style")) for b in buttons] == [
        ("approve", "primary"), ("reject", "danger"), (OPEN_LINK, None)]
    assert buttons[-1]["url"] == "http://testserver/s/token-1/?a=1&b=2"


def test_a_huge_card_stays_within_slacks_limits():
    card = make_card(title="标" * 400, fields=[CardField(f"f{i}" * 50, "v" * 5000) for i in range(700)],
                     actions=[CardAction(f"a{i}", "L" * 200) for i in range(40)], note="n" * 9000)
    blocks = render_card(card)["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        for f in block.get("fields", []):
            assert len(f["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
            assert all(len(e["text"]["text"]) <= 75 for e in block["elements"])
        if block["type"] in ("section", "context") and "text" in block:
            assert len(block["text"]["text"]) <= 3000
    assert blocks[-2]["type"] == "context"  # "More in the portal."


def test_a_decided_card_has_only_the_link_button():
    blocks = render_card(make_card(status="approved", status_label="Approved by 李四", actions=[]))["blocks"]
    assert [e["action_id"] for e in blocks[-1]["elements"]] == [OPEN_LINK]


# --- sending --------------------------------------------------------------------------------------

def test_send_card_opens_the_dm_and_posts_blocks():
    adapter, api = slack({"conversations.open": "conversations_open_200", "chat.postMessage": "chat_postMessage_200"})
    sent = adapter.send_card("UA8RXUSPL", make_card(), idempotency_key="d:1:slack")
    assert sent.message_id == "D069C7QFK 1503435956.000247"
    opened, posted = api.requests[0], api.requests[1]
    assert str(opened.url) == "https://slack.com/api/conversations.open"
    assert opened.headers["authorization"] == "Bearer xoxb-test"
    assert opened.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(opened.content) == {"users": "UA8RXUSPL"}
    body = api.json(1)
    assert str(posted.url) == "https://slack.com/api/chat.postMessage"
    assert body["channel"] == "D069C7QFK" and body["blocks"] == render_card(make_card())["blocks"]
    assert body["metadata"] == {"event_type": "portal_card",
                                "event_payload": {"topic": "approval.1", "key": "d:1:slack"}}
    # The DM channel is remembered: a second card is one call.
    adapter.send_card("UA8RXUSPL", make_card(), idempotency_key="d:2:slack")
    assert api.paths()[2:] == ["/api/chat.postMessage"]


def test_update_card_is_chat_update_of_the_same_message():
    adapter, api = slack({"chat.update": "chat_update_200"})
    adapter.update_card("UA8RXUSPL", "D069C7QFK 1503435956.000247", make_card(actions=[]))
    assert api.paths() == ["/api/chat.update"]
    body = api.json()
    assert body["channel"] == "D069C7QFK" and body["ts"] == "1503435956.000247" and body["blocks"]


def test_reply_in_thread_and_text():
    adapter, api = slack({"chat.postMessage": "chat_postMessage_200", "conversations.open": "conversations_open_200"})
    adapter.reply_in_thread("UA8RXUSPL", "D069C7QFK 1503435956.000247", "已批准")
    assert api.json() == {"channel": "D069C7QFK", "text": "已批准", "thread_ts": "1503435956.000247"}
    adapter.send_text("UA8RXUSPL", "hello", idempotency_key="t")
    assert api.json()["text"] == "hello"


def test_create_group_is_a_private_channel_with_members_invited():
    adapter, api = slack({"conversations.create": "conversations_create_200",
                          "conversations.invite": "conversations_invite_200"})
    group = adapter.create_group("Low stock: 伺服电机 SKU-123", ["U1", "U2"], idempotency_key="war-room-1")
    assert group.chat_id == "C0EAQDV4Z"
    created = api.json(0)
    assert created["is_private"] is True
    assert created["name"] == channel_name("Low stock: 伺服电机 SKU-123", "war-room-1")
    assert " " not in created["name"] and "." not in created["name"] and len(created["name"]) <= 80
    assert api.json(1) == {"channel": "C0EAQDV4Z", "users": "U1,U2"}


def test_a_retried_create_group_finds_the_first_channel():
    name = channel_name("War room", "k")

    def route(request):
        method = request.url.path.rsplit("/", 1)[-1]
        if method == "conversations.list":
            data = json.loads((FIXTURES / "conversations_list_200.json").read_text())["body"]
            data["channels"][1]["name"] = name
            return httpx.Response(200, json=data)
        return answer({"conversations.create": "error_name_taken",
                       "conversations.invite": "error_already_in_channel"}[method])

    api = FakeApi(route)
    adapter = SlackAdapter(SlackClient("xoxb-test", transport=api.transport))
    assert adapter.create_group("War room", ["U1"], idempotency_key="k").chat_id == "C0EAQDV4Z"
    assert api.paths() == ["/api/conversations.create", "/api/conversations.list", "/api/conversations.invite"]


def test_post_widget_posts_an_unfurling_link_and_pins_it():
    adapter, api = slack({"chat.postMessage": "chat_postMessage_200", "pins.add": "error_already_pinned"})
    adapter.post_widget("C0EAQDV4Z", "Stock <SKU-123>", "http://testserver/w/stock/?t=x")
    posted = api.json(0)
    assert posted["unfurl_links"] is True
    assert posted["blocks"][0]["text"]["text"] == "<http://testserver/w/stock/?t=x|Stock &lt;SKU-123&gt;>"
    assert api.json(1) == {"channel": "D069C7QFK", "timestamp": "1503435956.000247"}


def test_a_bad_address_or_message_id_is_permanent():
    adapter, _ = slack({})
    with pytest.raises(TransportError) as caught:
        adapter.send_card("li.si@example.com", make_card(), idempotency_key="k")
    assert caught.value.permanent
    with pytest.raises(TransportError):
        parse_message_id("$event !room")


# --- error mapping --------------------------------------------------------------------------------

def test_429_is_transient_and_honours_retry_after():
    error = error_from_response(answer("ratelimited_429"), "chat.postMessage")
    assert not error.permanent and error.retry_after == 30 and error.error == "ratelimited"


@pytest.mark.parametrize("code", ["user_not_found", "channel_not_found", "invalid_auth", "not_authed",
                                  "account_inactive", "msg_too_long", "invalid_blocks"])
def test_refusals_are_permanent_with_slacks_reason(code):
    error = error_from_response(answer(f"error_{code}"), "chat.postMessage")
    assert error.permanent and error.error == code and code in str(error)


def test_a_refused_token_says_what_to_fix():
    assert "SLACK_BOT_TOKEN" in str(error_from_response(answer("error_invalid_auth"), "chat.postMessage"))


@pytest.mark.parametrize("name", ["service_unavailable_503", "error_internal_error", "error_fatal_error"])
def test_server_trouble_is_transient(name):
    assert not error_from_response(answer(name), "chat.postMessage").permanent


def test_an_error_during_send_reaches_the_caller_mapped():
    adapter, _ = slack({"conversations.open": "error_user_not_found"})
    with pytest.raises(TransportError) as caught:
        adapter.send_card("UNOBODY00", make_card(), idempotency_key="k")
    assert caught.value.permanent and "user_not_found" in str(caught.value)


def test_network_failures_are_transient():
    def refuse(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    client = SlackClient("xoxb-test", transport=httpx.MockTransport(refuse))
    with pytest.raises(TransportError) as caught:
        client.call("chat.postMessage", {"channel": "D1", "text": "x"})
    assert not caught.value.permanent


# --- signatures and parsing -----------------------------------------------------------------------

def test_slacks_documented_signature_example():
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXa"
            b"IFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert inbound.signature(SECRET, "1531420618", body) == expected
    inbound.verify(SECRET, {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": expected}, body,
                   now=1531420618 + 60)


def test_a_good_signature_parses_a_button_press():
    payload = json.loads((FIXTURES / "block_actions.json").read_text())["payload"]
    body = form(payload)
    event = SlackAdapter(signing_secret=SECRET).parse_callback(signed(body), body, {})
    assert (event.kind, event.sender, event.tenant) == ("card_action", "UA8RXUSPL", "T9TK3CUKW")
    assert (event.message_id, event.action_id) == ("D069C7QFK 1503435956.000247", "approve")


@pytest.mark.parametrize("case", ["bad", "wrong_secret", "expired", "future", "missing", "tampered"])
def test_bad_signatures_are_rejected(case):
    payload = json.loads((FIXTURES / "block_actions.json").read_text())["payload"]
    body = form(payload)
    headers = {
        "bad": lambda: {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64},
        "wrong_secret": lambda: signed(body, secret="another-secret"),
        "expired": lambda: signed(body, at=time.time() - 301),
        "future": lambda: signed(body, at=time.time() + 301),
        "missing": lambda: {},
        "tampered": lambda: signed(body.replace(b"approve", b"reject_")),
    }[case]()
    with pytest.raises(CallbackRejected) as caught:
        SlackAdapter(signing_secret=SECRET).parse_callback(headers, body, {})
    assert caught.value.status == 401


def test_without_a_signing_secret_nothing_is_accepted():
    body = form({"type": "block_actions"})
    with pytest.raises(CallbackRejected):
        SlackAdapter(signing_secret="").parse_callback(signed(body, secret=""), body, {})


def test_url_verification_and_messages_and_link_buttons():
    body = json.dumps(json.loads((FIXTURES / "url_verification.json").read_text())["body"]).encode()
    event = inbound.parse(body, {"Content-Type": "application/json"})
    assert event.kind == "url_verification"
    assert event.reply == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    body = json.dumps(json.loads((FIXTURES / "event_message_im.json").read_text())["body"]).encode()
    event = inbound.parse(body, {"content-type": "application/json"})
    assert (event.kind, event.sender, event.text, event.chat_id) == ("message", "UA8RXUSPL", "库存 伺服电机", "")
    link = json.loads((FIXTURES / "block_actions_link.json").read_text())["payload"]
    assert inbound.parse(form(link), {}).kind == "ignored"


# --- through the portal ---------------------------------------------------------------------------

@pytest.fixture
def slack_portal(settings, monkeypatch, users):
    """The portal delivering to Slack (and the dev inbox) through a fake Slack Web API."""
    from im.platforms.slack import adapter as module

    settings.IM_ADAPTERS = ["devinbox", "slack"]
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SLACK_SIGNING_SECRET = SECRET
    settings.IM_RATE_LIMITS = {}
    module._dm_channels.clear()
    ImIdentity.objects.create(user=users["li.si"], platform="slack", tenant="T9TK3CUKW", external_id="UA8RXUSPL")

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "hooks.slack.com":
            return httpx.Response(200, text="ok")
        method = request.url.path.rsplit("/", 1)[-1]
        return answer({"conversations.open": "conversations_open_200", "chat.postMessage": "chat_postMessage_200",
                       "chat.update": "chat_update_200"}[method])

    api = FakeApi(route)
    monkeypatch.setattr(SlackAdapter, "default_transport", api.transport)
    return api


def test_an_approval_reaches_slack_and_a_button_press_decides(demo, users, slack_portal, send_event, client,
                                                              committed):
    api = slack_portal
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0971")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0971")
    delivery = Delivery.objects.get(topic=document.topic, recipient=users["li.si"], platform="slack")
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    ref = MessageRef.objects.get(delivery=delivery)
    assert ref.message_id == "D069C7QFK 1503435956.000247"
    posted = next(json.loads(r.content) for r in api.requests if r.url.path == "/api/chat.postMessage")
    assert "伺服电机" in posted["blocks"][0]["text"]["text"]

    payload = json.loads((FIXTURES / "block_actions.json").read_text())["payload"]
    body = form(payload)
    with committed():
        response = client.post("/api/im/slack/callback", data=body, content_type="application/x-www-form-urlencoded",
                               headers=signed(body))
    assert response.status_code == 200 and response.content == b""
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED
    assert Decision.objects.get(document=document).actor == users["li.si"]
    update = next(json.loads(r.content) for r in api.requests if r.url.path == "/api/chat.update")
    assert [e["action_id"] for e in update["blocks"][-1]["elements"]] == [OPEN_LINK]
    told = next(json.loads(r.content) for r in api.requests if r.url.host == "hooks.slack.com")
    assert told["response_type"] == "ephemeral" and told["text"]


def test_a_badly_signed_press_is_401_and_changes_nothing(demo, users, slack_portal, send_event, client, committed):
    send_event("erp.approval.requested", approval_requested("PR-2026-0972"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0972")
    body = form(json.loads((FIXTURES / "block_actions.json").read_text())["payload"])
    with committed():
        response = client.post("/api/im/slack/callback", data=body, content_type="application/x-www-form-urlencoded",
                               headers=signed(body, secret="forged"))
    assert response.status_code == 401
    document.refresh_from_db()
    assert document.status != ApprovalDocument.Status.APPROVED and not Decision.objects.filter(document=document)


def test_the_events_api_url_check_is_answered(slack_portal, client):
    body = json.dumps(json.loads((FIXTURES / "url_verification.json").read_text())["body"]).encode()
    response = client.post("/api/im/slack/callback", data=body, content_type="application/json", headers=signed(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_a_platform_that_is_not_enabled_has_no_callback(settings, client, db):
    settings.IM_ADAPTERS = ["devinbox"]
    body = form(json.loads((FIXTURES / "block_actions.json").read_text())["payload"])
    settings.SLACK_SIGNING_SECRET = SECRET
    response = client.post("/api/im/slack/callback", data=body, content_type="application/x-www-form-urlencoded",
                           headers=signed(body))
    assert response.status_code == 404


# --- recall (retention) ------------------------------------------------------------------------------

def test_delete_message_is_chat_delete_and_a_message_already_gone_counts_as_deleted():
    adapter, api = slack({"chat.delete": "chat_delete_200"})
    adapter.delete_message("UA8RXUSPL", "D069C7QFK 1503435956.000247")
    assert api.paths() == ["/api/chat.delete"]
    assert api.json() == {"channel": "D069C7QFK", "ts": "1503435956.000247"}

    gone, _ = slack({"chat.delete": "error_message_not_found"})
    gone.delete_message("UA8RXUSPL", "D069C7QFK 1503435956.000247")  # no error: nothing left to delete


def test_a_message_slack_will_not_delete_is_a_permanent_error():
    adapter, _ = slack({"chat.delete": "error_cant_delete_message"})
    with pytest.raises(TransportError) as caught:
        adapter.delete_message("UA8RXUSPL", "D069C7QFK 1503435956.000247")
    assert caught.value.permanent and "cant_delete_message" in str(caught.value)


def test_a_button_that_decides_asks_first():
    question = "Approve PR-2026-0900 for ¥12,800.00?"
    card = make_card(actions=[CardAction("approve", "Approve", "primary", confirm=question),
                              CardAction("dismiss", "Dismiss")])
    actions = next(b for b in render_card(card)["blocks"] if b["type"] == "actions")["elements"]
    approve, dismiss = actions[0], actions[1]
    assert approve["confirm"]["text"]["text"] == question
    assert approve["confirm"]["confirm"]["text"] == "Approve" and "deny" in approve["confirm"]
    assert "confirm" not in dismiss
