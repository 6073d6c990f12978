"""The Matrix adapter: error mapping on recorded Synapse answers, rendering, and the real thing against
a running Synapse (conftest.py): send, exactly-once, edit, unknown users, the portal's whole loop, replies."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from approvals import services as approvals
from approvals.models import ApprovalDocument, Decision
from im.cards import Card, CardAction, CardField
from im.models import Delivery, MessageRef
from im.platforms import get_adapter
from im.platforms.base import TransportError
from im.platforms.matrix.adapter import MatrixAdapter, message_id_of, parse_message_id, txn_id
from im.platforms.matrix.client import MatrixClient, MatrixError, error_from_response
from im.platforms.matrix.inbound import command_text, sync_once
from im.platforms.matrix.render import render_card, render_edit
from im.platforms.matrix.testing import room_messages
from sso.models import ImIdentity
from tests.conftest import approval_requested

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> httpx.Response:
    """A response Synapse 1.163 really gave (recorded with testing.SynapseServer, default rate limits)."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return httpx.Response(data["status"], headers=data["headers"], json=data["body"])


def make_card(title: str = "Purchase requisition: 伺服电机", *, actions: bool = True, **extra) -> Card:
    return Card(
        topic="approval.1",
        title=title,
        status="pending",
        status_label="Waiting for your decision",
        link="http://testserver/s/token-1/?a=1&b=<2>",
        link_label="Open",
        locale="en",
        amount="CNY 12,800.00",
        fields=[CardField("Number", "PR-2026-0900"), CardField("Requester", "zhang.san")],
        actions=[CardAction("approve", "Approve", "primary"), CardAction("reject", "Reject", "danger")]
        if actions else [],
        **extra,
    )


# --- fast tests, no server ------------------------------------------------------------------------

def test_429_waits_as_long_as_synapse_asks():
    error = error_from_response(recorded("send_limit_exceeded_429"), "send")
    assert not error.permanent and error.errcode == "M_LIMIT_EXCEEDED"
    assert error.retry_after == pytest.approx(3.879)


def test_429_without_retry_after_ms_uses_the_header():
    error = error_from_response(httpx.Response(429, headers={"Retry-After": "7"}, json={}), "send")
    assert not error.permanent and error.retry_after == 7


@pytest.mark.parametrize(
    ("fixture", "errcode"),
    [
        ("unknown_token_401", "M_UNKNOWN_TOKEN"),
        ("send_not_in_room_403", "M_FORBIDDEN"),
        ("create_room_federation_denied_403", "M_FORBIDDEN"),
        ("profile_unknown_user_404", "M_UNKNOWN"),
    ],
)
def test_refusals_are_permanent_with_the_homeservers_reason(fixture, errcode):
    response = recorded(fixture)
    error = error_from_response(response, "send")
    assert error.permanent and error.errcode == errcode and error.status == response.status_code
    assert response.json()["error"] in str(error)


def test_a_refused_token_says_what_to_fix():
    assert "MATRIX_BOT_TOKEN" in str(error_from_response(recorded("unknown_token_401"), "send"))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status):
    error = error_from_response(httpx.Response(status, text="<html>bad gateway</html>"), "send")
    assert not error.permanent and error.retry_after is None


def test_network_failures_are_transient():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    client = MatrixClient("http://matrix.invalid", token="t", transport=httpx.MockTransport(refuse))
    with pytest.raises(MatrixError) as caught:
        client.send("!room", {"msgtype": "m.text", "body": "x"}, "txn")
    assert not caught.value.permanent


def test_an_unknown_user_stops_at_once_without_creating_a_room():
    calls = []

    def homeserver(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        if request.url.path.endswith("/whoami"):
            return httpx.Response(200, json={"user_id": "@bot:portal.test"})
        if "/account_data/m.direct" in request.url.path:
            return httpx.Response(404, json={"errcode": "M_NOT_FOUND", "error": "Account data not found"})
        if "/profile/" in request.url.path:
            return recorded("profile_unknown_user_404")
        return httpx.Response(500)

    adapter = MatrixAdapter(MatrixClient("http://hs", token="t", transport=httpx.MockTransport(homeserver)))
    with pytest.raises(TransportError, match="unknown Matrix user") as caught:
        adapter.send_card("@nobody:portal.test", make_card(), idempotency_key="k")
    assert caught.value.permanent
    assert not any(path.endswith("/createRoom") for _, path in calls)


def test_an_address_that_is_no_matrix_id_is_permanent():
    with pytest.raises(TransportError) as caught:
        MatrixAdapter(MatrixClient("http://hs", token="t")).send_card("li.si", make_card(), idempotency_key="k")
    assert caught.value.permanent


def test_the_card_renders_as_text_and_escaped_html():
    content = render_card(make_card())
    assert content["msgtype"] == "m.text" and content["format"] == "org.matrix.custom.html"
    for text in ("伺服电机", "CNY 12,800.00", "PR-2026-0900", "http://testserver/s/token-1/?a=1&b=<2>", "approve"):
        assert text in content["body"]
    html = content["formatted_body"]
    assert '<a href="http://testserver/s/token-1/?a=1&amp;b=&lt;2&gt;">Open</a>' in html
    assert "<code>approve</code> (Approve)" in html and "CNY 12,800.00" in html


def test_an_edit_replaces_the_original_event():
    content = render_edit("$original", make_card(actions=False))
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$original"}
    assert content["body"].startswith("* ") and "Reply" not in content["m.new_content"]["body"]


def test_ids():
    assert txn_id("card", "a") == txn_id("card", "a") != txn_id("card", "b")
    assert parse_message_id(message_id_of("!room", "$event")) == ("!room", "$event")
    with pytest.raises(TransportError):
        parse_message_id("12")


def test_reply_fallbacks_are_not_the_command():
    assert command_text({"body": "> <@bot:hs> Purchase requisition\n> Open: …\n\napprove"}) == "approve"
    assert command_text({"body": "  批准 \nthanks"}) == "批准"


# --- against the running Synapse ------------------------------------------------------------------

def join_and_read(synapse, account, room_id: str) -> list[dict]:
    with synapse.server.client(account) as person:
        person.post(f"/join/{room_id}").raise_for_status()
        return room_messages(person, room_id)


def test_a_card_reaches_the_recipient_in_a_direct_room(matrix, fresh_user):
    person = fresh_user()
    title = f"Purchase requisition: 伺服电机 {uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    sent = MatrixAdapter().send_card(person.user_id, make_card(title), idempotency_key=f"k-{title}")
    first_send = time.monotonic() - started
    room_id, event_id = parse_message_id(sent.message_id)

    events = join_and_read(matrix, person, room_id)
    card = next(e for e in events if e.get("event_id") == event_id)
    assert card["sender"] == matrix.bot.user_id
    content = card["content"]
    assert content["msgtype"] == "m.text" and content["format"] == "org.matrix.custom.html"
    for text in (title, "CNY 12,800.00", "http://testserver/s/token-1/"):
        assert text in content["body"] and text in content["formatted_body"]

    with matrix.server.client(matrix.bot) as bot:
        direct = bot.get(f"/user/{matrix.bot.user_id}/account_data/m.direct").json()
    assert direct[person.user_id] == [room_id]

    # A second card to the same person goes to the same room (found again through m.direct).
    started = time.monotonic()
    again = get_adapter("matrix").send_card(person.user_id, make_card(), idempotency_key=f"k2-{title}")
    later_send = time.monotonic() - started
    assert parse_message_id(again.message_id)[0] == room_id
    print(f"first send (room created) {first_send * 1000:.0f} ms, later send {later_send * 1000:.0f} ms")


def test_the_same_idempotency_key_twice_posts_one_event(matrix, fresh_user):
    from im.platforms.matrix import adapter as module

    person = fresh_user()
    title = f"Exactly once {uuid.uuid4().hex[:6]}"
    first = MatrixAdapter().send_card(person.user_id, make_card(title), idempotency_key="delivery:once")
    module._rooms.clear()  # the retry runs in another worker process
    second = MatrixAdapter().send_card(person.user_id, make_card(title), idempotency_key="delivery:once")
    assert first == second

    events = join_and_read(matrix, person, parse_message_id(first.message_id)[0])
    assert [e["event_id"] for e in events if title in e.get("content", {}).get("body", "")] == [
        parse_message_id(first.message_id)[1]
    ]


def test_update_card_is_an_edit_the_person_sees(matrix, fresh_user):
    person = fresh_user()
    adapter = MatrixAdapter()
    sent = adapter.send_card(person.user_id, make_card("Edit me"), idempotency_key=f"edit-{person.user_id}")
    decided = Card(**{**make_card("Edit me", actions=False).__dict__, "status": "approved",
                      "status_label": "Approved by 李四"})
    adapter.update_card(person.user_id, sent.message_id, decided)
    adapter.update_card(person.user_id, sent.message_id, decided)  # a retried edit: one edit event

    room_id, event_id = parse_message_id(sent.message_id)
    events = join_and_read(matrix, person, room_id)
    edits = [e for e in events if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"]
    assert len(edits) == 1
    assert edits[0]["content"]["m.relates_to"]["event_id"] == event_id
    assert "Approved by 李四" in edits[0]["content"]["m.new_content"]["formatted_body"]
    assert "Reply to this message" not in edits[0]["content"]["m.new_content"]["body"]
    with matrix.server.client(person) as client:
        original = client.get(f"/rooms/{room_id}/event/{event_id}").json()
    assert original["unsigned"]["m.relations"]["m.replace"]["event_id"] == edits[0]["event_id"]


def test_an_unknown_or_unreachable_user_is_a_permanent_error(matrix):
    for address in ("@nobody-here:portal.test", "@someone:elsewhere.example"):
        with pytest.raises(TransportError) as caught:
            MatrixAdapter().send_card(address, make_card(), idempotency_key=f"unknown-{address}")
        assert caught.value.permanent, address


def test_a_refused_bot_token_is_a_permanent_error(matrix, settings):
    settings.MATRIX_BOT_TOKEN = "syt_revoked"
    with pytest.raises(TransportError, match="M_UNKNOWN_TOKEN") as caught:
        MatrixAdapter().send_card(matrix.alice.user_id, make_card(), idempotency_key="revoked")
    assert caught.value.permanent


def test_the_bot_can_log_in_with_its_password(matrix, settings):
    settings.MATRIX_BOT_TOKEN = ""
    settings.MATRIX_BOT_USER = "portal-bot"
    settings.MATRIX_BOT_PASSWORD = matrix.bot.password
    sent = MatrixAdapter().send_card(matrix.alice.user_id, make_card(), idempotency_key=f"login-{uuid.uuid4()}")
    assert sent.message_id.startswith("!")


@pytest.mark.django_db
def test_an_approval_reaches_dev_inbox_and_matrix_and_the_decision_edits_both(
    demo, users, matrix, fresh_user, send_event, committed
):
    person = fresh_user()
    ImIdentity.objects.create(user=users["li.si"], platform="matrix", tenant="portal.test",
                              external_id=person.user_id)
    response = send_event("erp.approval.requested", approval_requested("PR-2026-0961"))
    assert response.status_code == 202, response.content
    document = ApprovalDocument.objects.get(external_id="PR-2026-0961")

    deliveries = {d.platform: d for d in Delivery.objects.filter(topic=document.topic, recipient=users["li.si"])}
    assert set(deliveries) == {"devinbox", "matrix"}
    assert deliveries["matrix"].status == Delivery.Status.SENT, deliveries["matrix"].last_error
    ref = MessageRef.objects.get(delivery=deliveries["matrix"])
    assert ref.address == person.user_id
    room_id, event_id = parse_message_id(ref.message_id)

    with committed():
        approvals.decide(users["li.si"], document.pk, "approved", idempotency_key="matrix-loop-1")

    events = join_and_read(matrix, person, room_id)
    card = next(e for e in events if e["event_id"] == event_id)
    assert "伺服电机" in card["content"]["body"] and "12,800.00" in card["content"]["formatted_body"]
    assert "/s/" in card["content"]["body"]
    edit = [e for e in events if e["content"].get("m.relates_to", {}).get("event_id") == event_id][-1]
    shown = edit["content"]["m.new_content"]
    deliveries["matrix"].refresh_from_db()
    assert deliveries["matrix"].card["status"] == "approved" and deliveries["matrix"].card["actions"] == []
    assert deliveries["matrix"].card["status_label"] in shown["body"]
    ref.refresh_from_db()
    assert not ref.needs_update and not ref.update_error


def test_retention_redacts_the_card_on_the_homeserver(demo, users, matrix, fresh_user, send_event):
    import datetime as dt

    from django.utils import timezone

    from trust import retention
    from trust.models import RetentionPolicy

    person = fresh_user()
    ImIdentity.objects.create(user=users["li.si"], platform="matrix", tenant="portal.test",
                              external_id=person.user_id)
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0962")).status_code == 202
    document = ApprovalDocument.objects.get(external_id="PR-2026-0962")
    delivery = Delivery.objects.get(topic=document.topic, platform="matrix")
    room_id, event_id = parse_message_id(MessageRef.objects.get(delivery=delivery).message_id)

    RetentionPolicy.objects.create(kind="sent_cards", platform="matrix", keep_days=30)
    result = retention.run(now=timezone.now() + dt.timedelta(days=31))
    assert result.destroyed["sent_cards@matrix"] == 1
    assert not Delivery.objects.filter(pk=delivery.pk).exists()

    with matrix.server.client(person) as client:
        client.post(f"/join/{room_id}").raise_for_status()
        event = client.get(f"/rooms/{room_id}/event/{event_id}").json()
    assert event["content"] == {}  # redacted: the card's text is gone from the homeserver too
    assert event["unsigned"]["redacted_because"]["sender"] == matrix.bot.user_id


@pytest.mark.django_db
def test_a_reply_command_on_matrix_decides_and_the_bot_answers(demo, users, matrix, fresh_user, send_event):
    person = fresh_user()
    ImIdentity.objects.create(user=users["li.si"], platform="matrix", tenant="portal.test",
                              external_id=person.user_id)
    adapter = MatrixAdapter()
    sync_once(adapter)  # the loop's first start takes the current position
    send_event("erp.approval.requested", approval_requested("PR-2026-0962"))
    document = ApprovalDocument.objects.get(external_id="PR-2026-0962")
    ref = MessageRef.objects.get(topic=document.topic, platform="matrix")
    room_id, event_id = parse_message_id(ref.message_id)

    with matrix.server.client(person) as client:
        client.post(f"/join/{room_id}").raise_for_status()
        client.put(f"/rooms/{room_id}/send/m.room.message/reply-1", json={
            "msgtype": "m.text",
            "body": "> <@portal-bot:portal.test> Purchase requisition\n\napprove",
            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        }).raise_for_status()

    notices = sync_once(adapter, timeout_ms=5000)
    assert len(notices) == 1, notices
    document.refresh_from_db()
    assert document.status == ApprovalDocument.Status.APPROVED, notices
    assert Decision.objects.get(document=document).actor == users["li.si"]
    with matrix.server.client(person) as client:
        events = room_messages(client, room_id)
    answers = [e for e in events if e["content"].get("msgtype") == "m.notice"]
    assert answers and answers[-1]["content"]["body"] == notices[0]
    assert sync_once(adapter, timeout_ms=0) == []  # nothing is acted on twice


@pytest.mark.django_db
def test_the_sync_command_runs_once(matrix):
    from django.core.management import call_command

    call_command("matrix_sync", "--once")  # takes or advances the position; acts on nothing here
    call_command("matrix_sync", "--once")


def test_a_person_who_left_is_invited_again_and_a_room_the_bot_left_is_replaced(matrix, fresh_user):
    from im.platforms.matrix import adapter as module

    person = fresh_user()
    first = MatrixAdapter().send_card(person.user_id, make_card("one"), idempotency_key=f"left-1-{person.user_id}")
    room_id = parse_message_id(first.message_id)[0]
    with matrix.server.client(person) as client:
        client.post(f"/join/{room_id}").raise_for_status()
        client.post(f"/rooms/{room_id}/leave").raise_for_status()
    module._rooms.clear()
    again = MatrixAdapter().send_card(person.user_id, make_card("two"), idempotency_key=f"left-2-{person.user_id}")
    assert parse_message_id(again.message_id)[0] == room_id
    with matrix.server.client(person) as client:
        assert client.post(f"/join/{room_id}").status_code == 200  # the invitation is there again

    with matrix.server.client(matrix.bot) as bot:
        bot.post(f"/rooms/{room_id}/leave").raise_for_status()
    # The process still remembers the old room: the send is refused, and a new room is made once.
    third = MatrixAdapter().send_card(person.user_id, make_card("three"), idempotency_key=f"left-3-{person.user_id}")
    new_room = parse_message_id(third.message_id)[0]
    assert new_room != room_id
    assert any("three" in e["content"].get("body", "") for e in join_and_read(matrix, person, new_room))


def test_a_question_in_the_direct_room_is_answered_by_the_bot_from_live_data(demo, users, matrix, fresh_user,
                                                                            committed):
    """The chat bot on a real homeserver: 赵六 asks in his direct room with the bot and gets the
    stock card; 陈七 (sales, no stock rights) asks the same and gets no quantities."""
    from inventory.models import StockLevel

    adapter = MatrixAdapter()
    sync_once(adapter)
    answers = {}
    for username in ("zhao.liu", "chen.qi"):
        person = fresh_user()
        ImIdentity.objects.create(user=users[username], platform="matrix", tenant="portal.test",
                                  external_id=person.user_id)
        room_id = adapter.direct_room(person.user_id)
        with matrix.server.client(person) as client:
            client.post(f"/join/{room_id}").raise_for_status()
            client.put(f"/rooms/{room_id}/send/m.room.message/q-{username}",
                       json={"msgtype": "m.text", "body": "SKU-123 还有多少库存"}).raise_for_status()
        with committed():  # the answer card goes out through the outbox after commit
            sync_once(adapter, timeout_ms=5000)
        with matrix.server.client(person) as client:
            bodies = [e["content"].get("body", "") for e in room_messages(client, room_id)
                      if e["sender"] != person.user_id]
        answers[username] = "\n".join(bodies)

    quantity = StockLevel.objects.get(sku="SKU-123", warehouse="SH").quantity.normalize()
    assert "伺服电机" in answers["zhao.liu"] and str(quantity) in answers["zhao.liu"], answers["zhao.liu"]
    assert str(quantity) not in answers["chen.qi"], answers["chen.qi"]


def test_a_question_in_a_group_room_answers_what_every_member_may_see_and_the_rest_privately(
    demo, users, matrix, fresh_user, committed
):
    """王五 (finance) asks with an @-mention in a room with 陈七 (sales, project B only): the room gets
    the part both may see, 王五 gets the rest in his direct room, 陈七 nothing private."""
    adapter = MatrixAdapter()
    sync_once(adapter)
    people = {}
    for username in ("wang.wu", "chen.qi"):
        people[username] = fresh_user()
        ImIdentity.objects.create(user=users[username], platform="matrix", tenant="portal.test",
                                  external_id=people[username].user_id)
    group = adapter.create_group("项目B 应收", [p.user_id for p in people.values()],
                                 idempotency_key=f"group-{uuid.uuid4().hex}")
    for person in people.values():
        with matrix.server.client(person) as client:
            client.post(f"/join/{group.chat_id}").raise_for_status()
    with matrix.server.client(people["wang.wu"]) as client:
        client.put(f"/rooms/{group.chat_id}/send/m.room.message/q-group",
                   json={"msgtype": "m.text", "body": "@bot 项目B的应收"}).raise_for_status()
        # Chatter without a mention is not for the bot.
        client.put(f"/rooms/{group.chat_id}/send/m.room.message/q-chatter",
                   json={"msgtype": "m.text", "body": "项目B的应收 我们下午再聊"}).raise_for_status()
    with committed():
        sync_once(adapter, timeout_ms=5000)

    with matrix.server.client(people["chen.qi"]) as client:
        in_group = "\n".join(e["content"].get("body", "") for e in room_messages(client, group.chat_id)
                             if e["sender"] == matrix.bot.user_id)
    assert "INV-2026-0305" in in_group and "INV-2026-0290" not in in_group, in_group
    assert in_group.count("INV-2026-0305") == 1  # one answer: the chatter got none
    private = Delivery.objects.get(recipient=users["wang.wu"], platform="matrix", topic__startswith="bot.")
    assert private.status == Delivery.Status.SENT and "INV-2026-0290" in json.dumps(private.card, ensure_ascii=False)
    assert not Delivery.objects.filter(recipient=users["chen.qi"], topic__startswith="bot.").exists()


def test_a_widget_gets_its_viewer_from_a_matrix_openid_token(demo, users, matrix, fresh_user, client):
    """The widget's identity is whatever the homeserver says an OpenID token belongs to; a token
    it does not know, a user of another server and an unlinked account get nothing."""
    person = fresh_user()
    ImIdentity.objects.create(user=users["zhao.liu"], platform="matrix", tenant="portal.test",
                              external_id=person.user_id)
    with matrix.server.client(person) as api:
        grant = api.post(f"/user/{person.user_id}/openid/request_token", json={}).json()
    path = "/w/stock/SKU-123/"

    answer = client.post("/w/matrix/session", {**grant, "path": path}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    widget = client.get(answer.json()["embed_url"])
    assert widget.status_code == 200 and "伺服电机" in widget.content.decode()
    assert "_auth_user_id" not in client.session  # an embed link, not a session

    forged = client.post("/w/matrix/session", {**grant, "access_token": "forged", "path": path},
                         content_type="application/json")
    other_server = client.post("/w/matrix/session", {**grant, "matrix_server_name": "evil.example", "path": path},
                               content_type="application/json")
    outside = client.post("/w/matrix/session", {**grant, "path": "https://evil.example/w/"},
                          content_type="application/json")
    assert (forged.status_code, other_server.status_code, outside.status_code) == (401, 401, 400)

    stranger = fresh_user()
    with matrix.server.client(stranger) as api:
        stranger_grant = api.post(f"/user/{stranger.user_id}/openid/request_token", json={}).json()
    unlinked = client.post("/w/matrix/session", {**stranger_grant, "path": path}, content_type="application/json")
    assert unlinked.status_code == 403
