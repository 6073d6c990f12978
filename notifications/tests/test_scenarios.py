"""The five scenarios end to end: demo ERP action → signed intake → rules → dev inbox (cards, groups)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals.models import ApprovalDocument, Decision
from erp.connectors.demo import services as erp
from im.models import Delivery
from im.platforms.devinbox.models import DevInboxGroup, DevInboxGroupMessage, DevInboxMessage
from notifications import services
from notifications.models import ChatGroup, Notification, NotificationRule
from tests.conftest import unlock_phone

pytestmark = pytest.mark.django_db


def cards_of(user, topic_prefix: str = "") -> list[dict]:
    return [m.card for m in DevInboxMessage.objects.filter(recipient=user).order_by("pk")
            if m.card["topic"].startswith(topic_prefix)]


def press(client, committed, user, card_topic: str, action: str):
    message = DevInboxMessage.objects.filter(recipient=user, card__topic=card_topic).order_by("-pk").first()
    assert message is not None, f"no {card_topic} card for {user}"
    unlock_phone(client, user)
    with committed():
        return client.post(f"/dev/inbox/message/{message.pk}/action/{action}/")


def group_cards(group: ChatGroup) -> list[dict]:
    return [m.card for m in DevInboxGroupMessage.objects.filter(group_id=int(group.chat_id)) if m.card]


# --- 1 -------------------------------------------------------------------------------------------


def test_scenario_1_urgent_pr_approved_prepare_goods_and_sales_group(scenarios, users, client, committed):
    with committed():
        requisition = erp.create_urgent_requisition()
    document = ApprovalDocument.objects.get(external_id=requisition.number)
    # The approver's card is the existing one, unchanged.
    assert [c["title"] for c in cards_of(users["li.si"], document.topic)]
    assert not cards_of(users["zhao.liu"])

    response = press(client, committed, users["li.si"], document.topic, "approve")
    assert response.status_code == 200
    document.refresh_from_db()
    assert document.status == "approved"
    assert Decision.objects.get(document=document).writeback_status == "done"

    [card] = cards_of(users["zhao.liu"], "notice.")
    assert card["title"].startswith(f"请备货: {requisition.number}")
    assert {"label": "物品", "value": ", ".join(f"{line.name} ×{int(line.qty)}" for line in requisition.lines.all())} \
        in card["fields"]
    delivery = Delivery.objects.get(recipient=users["zhao.liu"], topic=card["topic"])
    assert "①" in delivery.reason and delivery.reason.endswith("持有 ERP 角色 warehouse_keeper")

    sales = ChatGroup.objects.get(purpose="sales")
    [update] = [c for c in group_cards(sales) if requisition.number in c["title"] or any(
        f["value"] == requisition.number for f in c["fields"])]
    shared = {f["label"] for f in update["fields"]}
    assert "金额" not in shared and "Amount" not in shared  # only what the rule shares
    assert update["link"] == ""


# --- 2 -------------------------------------------------------------------------------------------


def test_scenario_2_low_stock_alert_one_tap_group_archived_when_back(scenarios, users, client, committed):
    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)  # available 5 < safety 8
    for login in ("zhang.san", "zhao.liu"):
        [card] = cards_of(users[login], "notice.")
        assert "SKU-124" in card["title"] or any(f["value"] == "SKU-124" for f in card["fields"])
        assert [a["id"] for a in card["actions"]] == ["group"]
    assert not cards_of(users["li.si"], "notice.")

    # Still below: no second alert.
    with committed():
        erp.adjust_stock("SKU-124", "SH", -1)
    assert len(cards_of(users["zhang.san"], "notice.")) == 1

    press(client, committed, users["zhang.san"], cards_of(users["zhang.san"], "notice.")[0]["topic"], "group")
    group = ChatGroup.objects.get(purpose="war_room")
    assert group.state == "open" and group.chat_id
    chat = DevInboxGroup.objects.get(pk=int(group.chat_id))
    assert str(users["zhang.san"].pk) in chat.members and str(users["zhao.liu"].pk) in chat.members
    assert "ext:liu.wei@jinggong-motor.example.cn" in chat.members
    assert group.members.filter(user=None, external_name__contains="刘伟").exists()
    widget = DevInboxGroupMessage.objects.get(group=chat, widget_url__endswith="/w/stock/SKU-124/")
    assert widget.widget_title
    cards = group_cards(group)
    intro = cards[0]
    assert {f["value"] for f in intro["fields"]} >= {"SKU-124"}
    assert not any("price" in f["label"].lower() or "单价" in f["label"] for f in intro["fields"])
    assert any("SKU-124" in c["title"] for c in cards[1:])  # open requisitions attached
    unlock_phone(client, users["zhao.liu"])  # a member's phone, signed in here
    page = client.get(f"/dev/inbox/group/{chat.pk}/").content.decode()  # the group's "phone"
    assert "liu.wei@jinggong-motor.example.cn" in page and "/w/stock/SKU-124/" in page
    # A second tap opens nothing new.
    press(client, committed, users["zhao.liu"], cards_of(users["zhao.liu"], "notice.")[0]["topic"], "group")
    assert ChatGroup.objects.filter(purpose="war_room").count() == 1

    with committed():
        erp.adjust_stock("SKU-124", "SH", 20)
    group.refresh_from_db()
    chat.refresh_from_db()
    assert group.state == "archived" and group.retain_until and chat.archived
    assert group_cards(group)[-1]["status"] == "archived"


def test_scenario_2_automatic_group_per_rule(scenarios, users, committed):
    NotificationRule.objects.filter(event_type="erp.stock.changed").update(group_mode="auto")
    with committed():
        erp.adjust_stock("SKU-202", "SH", -20)  # 36-6=30 → 10 < 20
    group = ChatGroup.objects.get(purpose="war_room")
    assert group.created_by is None and group.created_by_rule is not None and group.chat_id


# --- 3 -------------------------------------------------------------------------------------------


def test_scenario_3_unusual_expense_claim_discuss_opens_review_group(scenarios, users, client, committed):
    client.force_login(users["admin"])
    with committed():
        response = client.post("/erp/demo/claims/new/")  # the demo console's button
    assert response.status_code == 302
    document = ApprovalDocument.objects.get(kind="expense_claim", amount=Decimal("9800.00"))
    client.logout()
    assert cards_of(users["wang.wu"], document.topic)  # the usual approver card
    [card] = cards_of(users["wang.wu"], "notice.")
    assert "报销超出常规" in card["title"] and document.external_id in card["title"]
    assert [a["id"] for a in card["actions"]] == ["approve", "reject", "discuss"]

    press(client, committed, users["wang.wu"], card["topic"], "discuss")
    group = ChatGroup.objects.get(purpose="review")
    assert group.members.filter(user=users["wang.wu"]).exists()
    assert not group.members.filter(user=users["chen.qi"]).exists()  # may not view the claim in the portal
    [snippet] = group_cards(group)
    assert document.external_id in snippet["title"]
    assert any("EC-2026-0107" in f["label"] for f in snippet["fields"])  # similar past claims
    assert any("发起申请" in f["value"] for f in snippet["fields"])  # its history, in words

    # An ordinary claim: only the approver card.
    with committed():
        erp.create_expense_claim(Decimal("80.00"))
    assert len(cards_of(users["wang.wu"], "notice.")) == 1


# --- 4 -------------------------------------------------------------------------------------------


def test_scenario_4_order_status_to_sales_rep_and_customer_group_delay_highlighted(scenarios, users, committed):
    with committed():
        erp.set_order_status("SO-2026-0815", "delayed")
    [card] = cards_of(users["chen.qi"], "notice.")
    assert card["status"] == "delayed" and card["title"].startswith("⚠")
    assert not cards_of(users["li.si"], "notice.")  # in the group, but not the rep
    sales = ChatGroup.objects.get(purpose="sales")
    [posted] = [c for c in group_cards(sales) if any(f["value"] == "SO-2026-0815" for f in c["fields"])]
    assert posted["status"] == "delayed"
    assert "amount" not in {f["label"].lower() for f in posted["fields"]}
    reason = Delivery.objects.get(topic=card["topic"]).reason
    assert "④" in reason and "华东电子" in reason

    with committed():
        erp.set_order_status("SO-2026-0821", "shipped")  # 深圳创新科技: no group of its own
    assert len(cards_of(users["chen.qi"], "notice.")) == 2
    assert cards_of(users["chen.qi"], "notice.")[-1]["status"] == "shipped"


# --- 5 -------------------------------------------------------------------------------------------


def test_scenario_5_reminder_then_escalation(scenarios, users, committed):
    NotificationRule.objects.filter(remind_after_hours=4).update(quiet_start=None, quiet_end=None, working_days=[])
    with committed():
        requisition = erp.create_urgent_requisition()
    tracking = Notification.objects.get(recipient=users["li.si"], status="tracking")
    assert not cards_of(users["li.si"], "notice.")
    now = tracking.created_at
    with committed():
        assert services.tick(now + dt.timedelta(hours=3))["followups"] == 0
    with committed():
        services.tick(now + dt.timedelta(hours=5))
    [reminder] = cards_of(users["li.si"], "notice.")
    assert reminder["title"].startswith("提醒: ") and requisition.number in reminder["title"]
    assert [a["id"] for a in reminder["actions"]] == ["approve", "reject"]
    with committed():
        services.tick(now + dt.timedelta(hours=25))
    [escalated] = cards_of(users["wang.wu"], "notice.")
    assert escalated["title"].startswith("升级")
    assert "李四" in Delivery.objects.get(topic=escalated["topic"]).reason
    with committed():
        services.tick(now + dt.timedelta(hours=30))
    assert len(cards_of(users["wang.wu"], "notice.")) == 1  # once


def test_scenario_5_quiet_hours_hold_the_reminder_in_the_users_time_zone(scenarios, users, committed):
    from sso.models import Profile

    Profile.objects.filter(user=users["li.si"]).update(time_zone="Europe/Berlin")
    with committed():
        erp.create_urgent_requisition()
    tracking = Notification.objects.get(recipient=users["li.si"], status="tracking")
    berlin = dt.timezone(dt.timedelta(hours=1))
    # Tuesday 23:30 in Berlin: quiet until 08:00 there.
    late = dt.datetime(2026, 12, 1, 23, 30, tzinfo=berlin)
    Notification.objects.filter(pk=tracking.pk).update(created_at=late - dt.timedelta(hours=5))
    with committed():
        services.tick(late)
    held = Notification.objects.get(recipient=users["li.si"], kind="reminder")
    assert held.status == "held"
    assert held.send_at == dt.datetime(2026, 12, 2, 8, 0, tzinfo=berlin)
    assert not cards_of(users["li.si"], "notice.")
    with committed():
        services.tick(dt.datetime(2026, 12, 2, 8, 1, tzinfo=berlin))
    assert cards_of(users["li.si"], "notice.")


def test_scenario_5_bulk_approve_each_decided_and_written_back(scenarios, users, client, committed):
    pending = list(ApprovalDocument.objects.filter(status="pending", kind="purchase_requisition")
                   .values_list("pk", "external_id"))
    assert len(pending) >= 3
    with committed():
        erp.decide_in_erp(pending[0][1], "rejected", "li.si", "ERP side")  # decided meanwhile
    client.force_login(users["li.si"])
    page = client.get("/notifications/bulk-approve/")
    assert page.status_code == 200
    with committed():
        response = client.post("/notifications/bulk-approve/", {
            "document": [pk for pk, _n in pending], "outcome": "approved", "batch": "b1", "confirmed": "1"})
    html = response.content.decode()
    assert html.count('class="failed"') == 1 and html.count('class="ok"') == len(pending) - 1
    for pk, _number in pending[1:]:
        decision = Decision.objects.get(document_id=pk)
        assert decision.via == "bulk" and decision.writeback_status == "done"
    assert not Decision.objects.filter(document_id=pending[0][0]).exists()


def test_bulk_approve_ticks_nothing_and_confirms_count_and_total_before_deciding(scenarios, users, client, committed):
    from portal import formatting

    client.force_login(users["li.si"])
    page = client.get("/notifications/bulk-approve/").content.decode()
    assert 'name="document"' in page and "checked" not in page
    assert "Select all" in page or "全选" in page
    picked = list(ApprovalDocument.objects.filter(status="pending", kind="purchase_requisition")
                  .order_by("amount")[:2])
    assert len(picked) == 2
    with committed():
        response = client.post("/notifications/bulk-approve/", {
            "document": [d.pk for d in picked], "outcome": "approved", "batch": "b2"})
    html = response.content.decode()
    total = formatting.money(sum(d.amount for d in picked), "CNY", "zh-hans")
    assert 'id="bulk-confirm"' in html and f"批准 2 项申请，合计 {total}？" in html
    assert html.count('type="hidden" name="document"') == 2 and 'name="confirmed" value="1"' in html
    assert not Decision.objects.filter(document__in=picked).exists()  # nothing decided before "yes"
    with committed():
        client.post("/notifications/bulk-approve/", {
            "document": [d.pk for d in picked], "outcome": "approved", "batch": "b2", "confirmed": "1"})
    assert Decision.objects.filter(document__in=picked, via="bulk").count() == 2


def test_bulk_approve_with_nothing_ticked_decides_nothing(scenarios, users, client, committed):
    client.force_login(users["li.si"])
    with committed():
        response = client.post("/notifications/bulk-approve/", {"outcome": "approved", "batch": "b3"}, follow=True)
    assert 'id="bulk-confirm"' not in response.content.decode()
    assert not Decision.objects.filter(via="bulk").exists()


def test_scenario_5_out_of_office_delegate_gets_new_cards(scenarios, users, client, committed):
    from sso.models import Delegation

    now = timezone.now()
    Delegation.objects.create(delegator=users["li.si"], delegate=users["wang.wu"],
                              actions=["approvals.view", "approvals.decide"],
                              starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(days=3),
                              reason="休假 / on leave")
    with committed():
        requisition = erp.create_urgent_requisition()
    document = ApprovalDocument.objects.get(external_id=requisition.number)
    [card] = cards_of(users["wang.wu"], document.topic)
    assert [a["id"] for a in card["actions"]] == ["approve", "reject"]
    assert "李四" in Delivery.objects.get(recipient=users["wang.wu"], topic=document.topic).reason
    press(client, committed, users["wang.wu"], document.topic, "approve")
    decision = Decision.objects.get(document=document)
    assert decision.actor == users["wang.wu"] and decision.on_behalf_of == users["li.si"]
