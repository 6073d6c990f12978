"""The rule engine: authorize() filtering, reasons, preview, digests, quiet hours, isolation."""

from __future__ import annotations

import datetime as dt

import pytest

from erp.connectors.demo import services as erp
from im.models import Delivery
from im.platforms.devinbox.models import DevInboxMessage
from notifications import engine, services
from notifications.models import Notification, NotificationRule
from tests.conftest import approval_requested, unlock_phone

pytestmark = pytest.mark.django_db


def notices(user) -> list[dict]:
    return [m.card for m in DevInboxMessage.objects.filter(recipient=user).order_by("pk")
            if m.card["topic"].startswith("notice.")]


def document_pk(number: str) -> int:
    from approvals.models import ApprovalDocument

    return ApprovalDocument.objects.get(external_id=number).pk


def stock_rule(**extra) -> NotificationRule:
    return NotificationRule.objects.create(name="low stock", event_type="erp.stock.changed", below_safety_only=True,
                                           **extra)


def test_existing_approver_card_is_unchanged(demo, users, send_event):
    stock_rule(erp_roles=["buyer"])
    assert send_event("erp.approval.requested", approval_requested("PR-2026-0901")).status_code == 202
    [delivery] = Delivery.objects.filter(recipient=users["li.si"], topic=f"approval.{document_pk('PR-2026-0901')}")
    assert delivery.reason == "ERP 指定的审批人（li.si）"  # approvals' own routing, as before
    assert not Delivery.objects.filter(topic__startswith="notice.").exists()


def test_recipient_who_may_not_view_gets_nothing_or_a_notice(demo, users, committed):
    rule = stock_rule()
    rule.users.add(users["chen.qi"], users["zhang.san"])  # sales may not view stock; the buyer may
    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)
    assert Notification.objects.get(recipient=users["chen.qi"]).status == "skipped"
    assert not notices(users["chen.qi"])
    assert notices(users["zhang.san"])
    reason = Delivery.objects.get(recipient=users["zhang.san"], topic__startswith="notice.").reason
    assert reason == "规则“low stock”: 规则中指定"

    NotificationRule.objects.filter(pk=rule.pk).update(notice_without_access=True)
    with committed():
        erp.adjust_stock("SKU-124", "SH", 20)  # back above: the edge clears
        erp.adjust_stock("SKU-124", "SH", -20)
    [card] = notices(users["chen.qi"])
    assert card["status"] == "no_access" and card["fields"] == [] and card["link"] == ""


def test_preview_says_who_why_and_what_without_writing(demo, users, connector, admin_client):
    rule = stock_rule(erp_roles=["buyer", "sales"])
    outcome = engine.preview(rule, connector, "erp.stock.changed", {"sku": "SKU-123", "warehouse": "SH"})
    assert outcome.matched
    people = {p["user"].username: p for p in outcome.people}
    assert people["zhang.san"]["allowed"] and people["zhang.san"]["card"].title
    assert not people["chen.qi"]["allowed"] and people["chen.qi"]["card"] is None
    assert not Notification.objects.exists()

    page = admin_client.post(f"/admin/notifications/notificationrule/{rule.pk}/test/",
                             {"sample": '{"sku": "SKU-123", "warehouse": "SH"}', "connector": "demo"})
    html = page.content.decode()
    assert page.status_code == 200 and "zhang.san" in html and "chen.qi" in html and "SKU-123" in html


def test_preview_of_a_rule_that_does_not_fire_shows_no_card(demo, users, connector, admin_client):
    rule = stock_rule(erp_roles=["buyer"])
    outcome = engine.preview(rule, connector, "erp.stock.changed", {"sku": "SKU-201", "warehouse": "SH"})
    assert not outcome.matched  # SKU-201 in 上海: 450 on hand, far above its safety level
    assert outcome.people and all(p["card"] is None for p in outcome.people)
    assert all("不会触发" in p["sees"] or "does not fire" in p["sees"] for p in outcome.people)
    page = admin_client.post(f"/admin/notifications/notificationrule/{rule.pk}/test/",
                             {"sample": '{"sku": "SKU-201", "warehouse": "SH"}', "connector": "demo"})
    html = page.content.decode()
    assert 'class="imcard"' not in html and "<button" not in html.split('class="people"')[1]


def test_usual_amount_is_a_median_of_positive_amounts_never_negative(demo, connector, send_event):
    from approvals.models import ApprovalDocument

    for number, amount in (("EC-2026-9001", "800.00"), ("EC-2026-9002", "1000.00"), ("EC-2026-9003", "1200.00"),
                           ("EC-2026-9004", "-99999999.00")):
        send_event("erp.approval.requested", approval_requested(number, kind="expense_claim", amount=amount,
                                                                 title="差旅"))
    claim = ApprovalDocument.objects.get(external_id="EC-2026-9001")
    rule = NotificationRule.objects.create(name="unusual", event_type="erp.approval.requested", unusual_factor=3)
    subject = engine.subject_for_topic(claim.topic)
    usual = engine._usual_amount(subject)
    assert usual is not None and usual > 0
    [(ok, text)] = engine.check_conditions(rule, subject)
    assert not ok and "-" not in text.replace(claim.external_id, ""), text


def test_low_priority_events_come_as_one_digest(demo, users, committed):
    NotificationRule.objects.create(name="orders digest", event_type="erp.order.status_changed", to_sales_rep=True,
                                    priority="low", digest=True, digest_minutes=60)
    with committed():
        erp.set_order_status("SO-2026-0815", "delivered")
        erp.set_order_status("SO-2026-0821", "shipped")
    assert not notices(users["chen.qi"])
    first = Notification.objects.filter(status="in_digest").earliest("created_at").created_at
    with committed():
        assert services.tick(first + dt.timedelta(minutes=30))["digests"] == 0
    with committed():
        assert services.tick(first + dt.timedelta(minutes=61))["digests"] == 1
    [digest] = notices(users["chen.qi"])
    assert {f["label"] for f in digest["fields"]} == {"SO-2026-0815", "SO-2026-0821"}


def test_platforms_limit_where_cards_go(demo, users, committed):
    stock_rule(erp_roles=["buyer"], platforms=["matrix"])  # not enabled here
    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)
    assert Notification.objects.filter(recipient=users["zhang.san"]).exists()
    assert not Delivery.objects.filter(topic__startswith="notice.").exists()


def test_a_broken_rule_never_refuses_the_event(demo, users, committed, monkeypatch):
    stock_rule(erp_roles=["buyer"])

    def boom(*args, **kwargs):
        raise RuntimeError("broken rule")

    monkeypatch.setattr(engine, "targets", boom)
    from inventory.models import StockLevel

    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)
    assert StockLevel.objects.get(sku="SKU-124", warehouse="SH").quantity == 7


def test_rule_cards_lose_their_buttons_when_the_document_is_decided(demo, users, client, committed):
    NotificationRule.objects.create(name="remind", event_type="erp.approval.requested", to_approvers=True,
                                    initial_card=False, remind_after_hours=1)
    with committed():
        requisition = erp.create_urgent_requisition()
    created = Notification.objects.get(status="tracking").created_at
    with committed():
        services.tick(created + dt.timedelta(hours=2))
    [reminder] = notices(users["li.si"])
    assert [a["id"] for a in reminder["actions"]] == ["approve", "reject"]
    message = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=reminder["topic"])
    unlock_phone(client, users["li.si"])
    with committed():
        client.post(f"/dev/inbox/message/{message.pk}/action/approve/")
    message.refresh_from_db()
    assert message.card["actions"] == [] and message.revision > 1
    assert requisition.number in message.card["title"]


@pytest.mark.parametrize(("local", "expected"), [
    # Asia/Shanghai, quiet 22:00–08:00, Monday–Friday
    (dt.datetime(2026, 12, 1, 10, 0), dt.datetime(2026, 12, 1, 10, 0)),   # Tuesday morning: now
    (dt.datetime(2026, 12, 1, 23, 0), dt.datetime(2026, 12, 2, 8, 0)),    # Tuesday night: Wednesday 08:00
    (dt.datetime(2026, 12, 2, 3, 0), dt.datetime(2026, 12, 2, 8, 0)),     # small hours: 08:00
    (dt.datetime(2026, 12, 4, 23, 0), dt.datetime(2026, 12, 7, 8, 0)),    # Friday night: Monday 08:00
    (dt.datetime(2026, 12, 5, 12, 0), dt.datetime(2026, 12, 7, 8, 0)),    # Saturday: Monday 08:00
])
def test_quiet_hours_and_working_days(demo, users, local, expected):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    rule = NotificationRule(quiet_start=dt.time(22), quiet_end=dt.time(8), working_days=[0, 1, 2, 3, 4])
    got = engine.next_allowed(rule, users["li.si"], local.replace(tzinfo=tz))
    assert got == expected.replace(tzinfo=tz)
