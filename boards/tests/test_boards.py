"""Group boards end to end on the demo ERP: the low-stock war room with the supplier as a guest,
the finance review board, and every refusal (another group's board, a field not shared, an action
not allowed, an expired or revoked pass, a stale object, an ERP without the capability)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from boards import guests
from boards.models import BoardActivity, GuestPass
from erp.connectors.demo import services as erp
from erp.connectors.demo.models import PurchaseOrderLine
from im.platforms.devinbox.models import DevInboxGroupMessage, DevInboxMessage
from notifications.models import ChatGroup
from tests.conftest import unlock_phone
from trust.models import AuditEntry

from .conftest import code_in

pytestmark = pytest.mark.django_db

SUPPLIER = "liu.wei@jinggong-motor.example.cn"


def press(client, committed, user, topic_prefix: str, action: str):
    message = next(m for m in DevInboxMessage.objects.filter(recipient=user).order_by("-pk")
                   if m.card["topic"].startswith(topic_prefix))
    unlock_phone(client, user)
    with committed():
        return client.post(f"/dev/inbox/message/{message.pk}/action/{action}/")


@pytest.fixture
def war_room(scenarios, users, client, committed) -> ChatGroup:
    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)  # available 5 < safety 8
    press(client, committed, users["zhang.san"], "notice.", "group")
    return ChatGroup.objects.get(purpose="war_room")


def redeem(client, committed, group: ChatGroup, email: str = SUPPLIER):
    [invitation] = [m for m in mail.outbox if email in m.to]
    with committed():
        return client.post(f"/g/{group.pk}/join/", {"email": email, "code": code_in(invitation.body)})


def line_of(order: str) -> PurchaseOrderLine:
    return PurchaseOrderLine.objects.get(order__number=order, item__sku="SKU-124")


def confirm(client, committed, group: ChatGroup, line: PurchaseOrderLine, day: str, *, version=None, qty="",
            key="k1", seen=None):
    data = {"line": line.pk, "date": day, "qty": qty, "version": line.version if version is None else version,
            "key": key, "seen_confirmed_date": "", "seen_promised_date": str(line.promised_date),
            "seen_qty": str(line.qty), "seen_confirmed_qty": "", **(seen or {})}
    with committed():
        return client.post(f"/g/{group.pk}/act/confirm_delivery/", data)


def test_war_room_invites_the_supplier_by_email_and_pins_its_board(war_room, users):
    [pass_] = GuestPass.objects.filter(group=war_room)
    assert pass_.email == SUPPLIER and pass_.code_digest and pass_.redeemed_at is None
    [invitation] = mail.outbox
    assert invitation.to == [SUPPLIER] and f"/g/{war_room.pk}/join/" in invitation.body
    assert code_in(invitation.body) not in pass_.code_digest  # only a digest is kept
    assert DevInboxGroupMessage.objects.filter(group_id=int(war_room.chat_id),
                                               widget_url__endswith=f"/g/{war_room.pk}/").exists()


def test_the_group_card_loses_its_open_group_button_once_the_group_exists(war_room, users):
    for login in ("zhang.san", "zhao.liu"):
        [card] = [m.card for m in DevInboxMessage.objects.filter(recipient=users[login])
                  if m.card["topic"].startswith("notice.")]
        assert [a["id"] for a in card["actions"]] == [], card


def test_guest_sees_quantities_and_dates_of_their_own_lines_never_prices_or_other_suppliers(war_room, client,
                                                                                              committed):
    response = redeem(client, committed, war_room)
    assert response.status_code == 302 and response["Location"] == f"/g/{war_room.pk}/"
    assert "_auth_user_id" not in client.session  # a guest pass is not a portal session
    page = client.get(f"/g/{war_room.pk}/").content.decode()
    assert "PO-2026-0301" in page and "伺服驱动器" in page
    assert "PO-2026-0302" not in page and "苏州恒通" not in page  # another supplier's order of the same item
    assert "2650" not in page and "单价" not in page  # no prices
    assert "可用" in page and "安全库存" in page  # the rule's shared fields
    assert "在手" not in page and 'id="requisitions"' not in page  # on hand and requisitions are not shared
    assert "5,300" not in page and "5300" not in page  # nor the requisitions' amounts, in the chat either
    assert "confirm_delivery" in page and "/act/expedite/" not in page


def test_guest_confirms_a_delivery_date_the_erp_holds_it_audited_and_posted(war_room, client, committed):
    redeem(client, committed, war_room)
    line = line_of("PO-2026-0301")
    response = confirm(client, committed, war_room, line, "2026-12-20", qty="6")
    assert response.status_code == 200, response.content.decode()
    line.refresh_from_db()
    assert line.confirmed_date == dt.date(2026, 12, 20) and line.confirmed_qty == 6 and line.version == 2
    assert "刘伟" in line.confirmed_by
    activity = BoardActivity.objects.get(group=war_room, action="confirm_delivery", outcome="done")
    assert activity.detail.endswith("数量 6") or activity.detail.endswith("quantity 6"), activity.detail
    assert activity.guest is not None and activity.actor is None
    entry = AuditEntry.objects.filter(action="board.confirm_delivery").get()
    assert entry.actor_name == f"guest:{SUPPLIER}" and entry.object_id == str(war_room.pk)
    assert any("2026-12-20" in str(m.card) for m in DevInboxGroupMessage.objects.filter(
        group_id=int(war_room.chat_id)) if m.card)
    # The same form sent again (a double tap) applies nothing twice, and is recorded and audited once.
    confirm(client, committed, war_room, line, "2026-12-20", version=1, qty="6")
    line.refresh_from_db()
    assert line.version == 2
    assert BoardActivity.objects.filter(group=war_room, action="confirm_delivery").count() == 1
    assert AuditEntry.objects.filter(action="board.confirm_delivery").count() == 1


def test_stale_confirmation_is_refused_with_what_changed(war_room, client, committed, users):
    redeem(client, committed, war_room)
    line = line_of("PO-2026-0301")
    seen_version = line.version
    buyer = client.__class__()
    buyer.force_login(users["zhang.san"])
    assert confirm(buyer, committed, war_room, line, "2026-12-18", key="buyer").status_code == 200
    assert BoardActivity.objects.get(outcome="done").detail.endswith("数量 10")  # not "1E+1"
    response = confirm(client, committed, war_room, line, "2026-12-22", version=seen_version, key="guest")
    assert response.status_code == 409
    text = response.content.decode()
    assert "PO-2026-0301" in text and "2026-12-18" in text
    line.refresh_from_db()
    assert line.confirmed_date == dt.date(2026, 12, 18)
    assert BoardActivity.objects.filter(outcome="stale").count() == 1


def test_guest_may_not_take_member_actions_nor_touch_another_suppliers_line(war_room, client, committed):
    redeem(client, committed, war_room)
    own, other = line_of("PO-2026-0301"), line_of("PO-2026-0302")
    with committed():
        response = client.post(f"/g/{war_room.pk}/act/expedite/", {"line": own.pk, "version": own.version})
    assert response.status_code == 403
    assert confirm(client, committed, war_room, other, "2026-12-20").status_code == 404
    other.refresh_from_db()
    assert other.confirmed_date is None
    assert client.get(f"/g/{war_room.pk}/stock/").status_code == 404  # the members' stock view
    assert client.get("/w/stock/SKU-124/").status_code == 302  # no widget outside the group
    assert client.get("/api/approvals/pending/").status_code in (401, 403)


def test_another_groups_board_is_refused_to_guests_and_members(war_room, client, committed, users):
    other = ChatGroup.objects.get(purpose="sales")
    redeem(client, committed, war_room)
    assert client.get(f"/g/{other.pk}/body/").status_code == 404
    assert client.get(f"/g/{other.pk}/").status_code == 302  # to its join page: nothing of it shown
    member = client.__class__()
    member.force_login(users["zhang.san"])
    assert member.get(f"/g/{other.pk}/").status_code == 404
    assert member.get(f"/g/{war_room.pk}/").status_code == 200


def test_members_see_through_their_own_permissions(war_room, client, users):
    client.force_login(users["zhang.san"])
    page = client.get(f"/g/{war_room.pk}/").content.decode()
    assert "PO-2026-0301" in page and "PO-2026-0302" in page and "2650" in page
    client.force_login(users["li.si"])  # not a member of the war room
    assert client.get(f"/g/{war_room.pk}/").status_code == 404


def test_expired_pass_is_refused(war_room, client, committed):
    redeem(client, committed, war_room)
    GuestPass.objects.filter(group=war_room).update(expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    response = client.get(f"/g/{war_room.pk}/")
    assert response.status_code == 403 and "过期" in response.content.decode()


def test_archiving_the_group_revokes_the_pass(war_room, client, committed):
    redeem(client, committed, war_room)
    assert client.get(f"/g/{war_room.pk}/").status_code == 200
    with committed():
        erp.adjust_stock("SKU-124", "SH", 20)  # back above the safety level: archived
    war_room.refresh_from_db()
    assert war_room.state == "archived"
    # The guest's open tab refetches a part first: refused, but the guest keeps the cookie, so that
    # opening the board next says why (archived) instead of asking for a code again.
    refetch = client.get(f"/g/{war_room.pk}/body/")
    assert refetch.status_code == 403 and guests.COOKIE not in refetch.cookies
    response = client.get(f"/g/{war_room.pk}/")
    assert response.status_code == 403 and "归档" in response.content.decode()
    assert response.cookies[guests.COOKIE].value == ""  # the page visit ends the pass in the browser
    assert GuestPass.objects.get(group=war_room).revoked_reason == "group archived"
    assert client.get(f"/g/{war_room.pk}/").status_code == 302  # then: to the join page


def test_removing_the_member_revokes_the_pass(war_room, client, committed):
    redeem(client, committed, war_room)
    with committed():
        war_room.members.filter(user=None).delete()
    assert client.get(f"/g/{war_room.pk}/").status_code == 403


def test_a_code_works_once_and_wrong_codes_void_it(war_room, client, committed):
    assert redeem(client, committed, war_room).status_code == 302
    assert redeem(client.__class__(), committed, war_room).status_code == 403  # used
    with committed():
        responses = [client.post(f"/g/{war_room.pk}/join/", {"email": SUPPLIER, "code": "00000000"})
                     for _ in range(2)]
    assert all(r.status_code == 403 for r in responses)


def test_an_erp_without_the_capability_says_not_supported(war_room, client, committed, monkeypatch):
    from erp.connectors.base import CONFIRM_DELIVERY
    from erp.connectors.demo.connector import DemoConnector

    monkeypatch.setattr(DemoConnector, "capabilities", DemoConnector.capabilities - {CONFIRM_DELIVERY})
    redeem(client, committed, war_room)
    page = client.get(f"/g/{war_room.pk}/").content.decode()
    assert "/act/confirm_delivery/" not in page
    response = confirm(client, committed, war_room, line_of("PO-2026-0301"), "2026-12-20")
    assert response.status_code == 501
    assert BoardActivity.objects.filter(outcome="unsupported").exists()


# --- the finance review board -------------------------------------------------------------------


@pytest.fixture
def review(scenarios, users, client, committed) -> ChatGroup:
    client.force_login(users["admin"])
    with committed():
        client.post("/erp/demo/claims/new/")
    client.logout()
    press(client, committed, users["wang.wu"], "notice.", "discuss")
    return ChatGroup.objects.get(purpose="review")


def test_review_board_asks_the_requester_and_decides_the_claim(review, client, committed, users):
    from approvals.models import ApprovalDocument

    client.force_login(users["wang.wu"])
    page = client.get(f"/g/{review.pk}/").content.decode()
    document = ApprovalDocument.objects.get(pk=int(review.subject_topic.split(".")[1]))
    assert document.external_id in page and "9800" in page
    with committed():
        asked = client.post(f"/g/{review.pk}/act/ask_requester/", {"text": "发票在哪里?", "key": "q1"})
    assert asked.status_code == 200
    assert any("发票在哪里" in str(m.card) for m in DevInboxGroupMessage.objects.filter(
        group_id=int(review.chat_id)) if m.card)
    # The requester is not in the review group (may not view the review): the question reaches them directly.
    assert not review.members.filter(user=users["chen.qi"]).exists()
    [question] = [m.card for m in DevInboxMessage.objects.filter(recipient=users["chen.qi"])
                  if m.card["topic"].startswith("boardq.")]
    assert "发票在哪里" in str(question["fields"]) and document.external_id in question["title"]
    with committed():
        stale = client.post(f"/g/{review.pk}/act/decide_claim/", {
            "outcome": "approved", "version": document.version - 1 if document.version > 1 else 99, "key": "d0",
            "seen_status": "x"})
    assert stale.status_code == 409 and "已被修改" in stale.content.decode()
    with committed():
        decided = client.post(f"/g/{review.pk}/act/decide_claim/", {
            "outcome": "rejected", "version": document.version, "key": "d1", "comment": "缺少发票"})
    assert decided.status_code == 200, decided.content.decode()
    document.refresh_from_db()
    assert document.status == "rejected"
    assert AuditEntry.objects.filter(action="board.decide_claim").exists()
    assert AuditEntry.objects.filter(action="board.ask_requester").exists()


def test_dev_inbox_group_page_shows_no_banner_and_refetches_its_messages(war_room, client, users):
    unlock_phone(client, users["zhang.san"])
    chat = int(war_room.chat_id)
    page = client.get(f"/dev/inbox/group/{chat}/").content.decode()
    assert 'class="messages"' not in page  # posts were repeated as banners (Django's messages) at the top
    assert f'data-live-src="/dev/inbox/group/{chat}/body/"' in page
    body = client.get(f"/dev/inbox/group/{chat}/body/").content.decode()
    assert body.count('class="imcard') == DevInboxGroupMessage.objects.filter(group_id=chat).count()
    assert client.__class__().get(f"/dev/inbox/group/{chat}/body/").status_code == 404  # not a member's phone


def test_a_board_embed_token_covers_its_board_only(war_room, users, client):
    from widgets.embed import embed_topics, embed_viewer, make_embed_token

    token = make_embed_token(users["zhang.san"], f"/g/{war_room.pk}/")
    assert embed_viewer(token, f"/g/{war_room.pk}/body/") == users["zhang.san"]
    assert embed_viewer(token, f"/g/{war_room.pk}/act/confirm_delivery/") == users["zhang.san"]
    assert embed_viewer(token, f"/g/{war_room.pk}/join/") is None
    assert embed_viewer(token, "/w/stock/SKU-124/") is None
    assert embed_topics(token, users["zhang.san"]) == {f"board.{war_room.pk}", "item.SKU-124"}
    assert client.get(f"/g/{war_room.pk}/?e={token}").status_code == 200  # Matrix opens it this way
    other = ChatGroup.objects.get(purpose="sales")
    assert client.get(f"/g/{other.pk}/?e={token}").status_code == 404


def test_matrix_pins_the_board_through_its_openid_bootstrap(settings):
    from im.platforms.matrix.adapter import MatrixAdapter

    settings.PORTAL_BASE_URL = "https://portal.example.com"
    calls = []

    class Client:
        def _call(self, method, path, doing, json=None):
            calls.append(json)

    adapter = MatrixAdapter(Client())
    adapter.post_widget("!room:example.com", "Board", "https://portal.example.com/g/7/")
    assert calls[0]["url"] == "https://portal.example.com/w/matrix/?path=/g/7/&widgetId=$matrix_widget_id"


def test_retention_destroys_board_activity_and_ended_passes_unless_the_group_is_held(war_room, client, committed):
    from trust import retention
    from trust.models import LegalHold, RetentionPolicy

    redeem(client, committed, war_room)
    confirm(client, committed, war_room, line_of("PO-2026-0301"), "2026-12-20")
    assert BoardActivity.objects.filter(group=war_room).count() == 1
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    RetentionPolicy.objects.create(kind="board_activity", keep_days=30)
    RetentionPolicy.objects.create(kind="guest_passes", keep_days=30)
    hold = LegalHold.objects.create(scope="group", group_platform=war_room.platform, group_chat_id=war_room.chat_id,
                                    reason="supplier dispute")
    retention.run(now=later)
    assert BoardActivity.objects.filter(group=war_room).count() == 1 and GuestPass.objects.filter(
        group=war_room).count() == 1  # held
    hold.released_at = later
    hold.save()
    result = retention.run(now=later)
    assert result.destroyed.get("board_activity") == 1 and result.destroyed.get("guest_passes") == 1
    assert not BoardActivity.objects.filter(group=war_room).exists()


def test_admin_lists_passes_without_codes_and_revokes_them(war_room, admin_client, client, committed):
    redeem(client, committed, war_room)
    guest = GuestPass.objects.get(group=war_room)
    page = admin_client.get(f"/admin/boards/guestpass/{guest.pk}/change/").content.decode()
    assert SUPPLIER in page and "code_digest" not in page and guest.nonce not in page
    with committed():
        admin_client.post("/admin/boards/guestpass/", {"action": "revoke_passes", "_selected_action": [guest.pk]})
    response = client.get(f"/g/{war_room.pk}/")
    assert response.status_code == 403 and "管理员" in response.content.decode()
    assert admin_client.get("/admin/boards/boardactivity/").status_code == 200


def test_buyer_raises_a_requisition_from_the_suggestion_guest_may_not(war_room, client, committed, users,
                                                                         connector):
    from approvals.models import ApprovalDocument
    from foresight.models import ModelRun, RestockSuggestion
    from sso.models import PermissionRule

    PermissionRule.objects.get_or_create(name="buyers raise requisitions", defaults={
        "connector": connector, "erp_roles": ["buyer"], "actions": ["foresight.requisition"]})
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version="board-test")
    suggestion = RestockSuggestion.objects.create(
        connector=connector, run=run, sku="SKU-124", name="伺服驱动器", warehouse="SH", warehouse_name="上海仓",
        unit="台", supplier="上海精工电机有限公司", on_hand=7, reorder_point=12, erp_reorder_point=8, quantity=10,
        unit_price=2650, lead_time_days=14, lead_time_demand=9, safety_stock=3, service_level=0.95,
        days_of_cover=6, method="ets", weekly_forecast=[4, 4])
    redeem(client, committed, war_room)
    with committed():
        refused = client.post(f"/g/{war_room.pk}/act/raise_requisition/", {"suggestion": suggestion.pk})
    assert refused.status_code == 403
    buyer = client.__class__()
    buyer.force_login(users["zhang.san"])
    assert "/act/raise_requisition/" in buyer.get(f"/g/{war_room.pk}/stock/").content.decode()
    with committed():
        response = buyer.post(f"/g/{war_room.pk}/act/raise_requisition/", {"suggestion": suggestion.pk})
    assert response.status_code == 200, response.content.decode()
    suggestion.refresh_from_db()
    assert suggestion.status == "requisitioned" and suggestion.requisition_number
    assert ApprovalDocument.objects.filter(external_id=suggestion.requisition_number).exists()
    assert AuditEntry.objects.filter(action="board.raise_requisition").exists()


def test_buyer_expedites_a_line_once_and_a_stale_expedite_says_what_changed(war_room, committed, users, client):
    line = line_of("PO-2026-0302")
    client.force_login(users["zhang.san"])
    with committed():
        done = client.post(f"/g/{war_room.pk}/act/expedite/", {"line": line.pk, "version": line.version, "key": "x1"})
    assert done.status_code == 200
    line.refresh_from_db()
    assert line.expedite_requested_at is not None and line.version == 2
    with committed():
        stale = client.post(f"/g/{war_room.pk}/act/expedite/", {
            "line": line.pk, "version": 1, "key": "x2", "seen_qty": "4.00", "seen_promised_date": "2000-01-01"})
    assert stale.status_code == 409 and "PO-2026-0302" in stale.content.decode()


def test_the_join_page_names_no_group_and_refuses_alike_for_any_id_address_or_code(war_room, client, committed):
    """Anyone may reach /g/<id>/join/ (a guest has no account yet): it must not tell which groups exist,
    what they are called (a customer, a claim number) or which addresses are invited."""
    import re

    existing, missing = client.get(f"/g/{war_room.pk}/join/"), client.get("/g/999999/join/")
    assert existing.status_code == missing.status_code == 200
    assert war_room.name not in existing.content.decode()
    assert client.get(f"/g/{war_room.pk}/")["Location"] == f"/g/{war_room.pk}/join/"
    assert client.get("/g/999999/")["Location"] == "/g/999999/join/"
    with committed():
        refusals = [client.post(f"/g/{group_id}/join/", {"email": email, "code": "12345678"}) for group_id, email in
                    ((war_room.pk, SUPPLIER), (war_room.pk, "nobody@example.com"), (999999, SUPPLIER))]
    assert [r.status_code for r in refusals] == [403, 403, 403]
    said = {re.search(r'role="alert">(.*?)<', r.content.decode()).group(1) for r in refusals}
    assert len(said) == 1, said
    assert all(war_room.name not in r.content.decode() for r in refusals)
    assert redeem(client, committed, war_room).status_code == 302  # one wrong code did not void the invitation


def test_the_dev_mailbox_is_for_staff_only(war_room, client, admin_client):
    """Every guest's one-time code is in the dev mailbox: read anonymously, it opened any war room as
    the supplier. Like the demo ERP console it needs a staff sign-in."""
    from boards.models import DevMailMessage

    DevMailMessage.objects.create(to=SUPPLIER, subject="code", body="one-time code 12345678")
    anonymous = client.get("/dev/mail/")
    assert anonymous.status_code == 302 and "12345678" not in anonymous.content.decode()
    assert "12345678" in admin_client.get("/dev/mail/").content.decode()
