"""What a person sees (issue #21): one format for money and dates, pages that explain themselves,
translated statuses, charts drawn on the server, foresight pages behind restrict(), and an admin a
permission administrator can find their way in."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone, translation

from approvals.models import ApprovalDocument
from foresight.models import ModelRun, ReceivableRisk, RestockSuggestion, SeriesForecast
from inventory.models import StockLevel, StockMove
from portal import formatting
from sso.models import PermissionRule, Profile
from tests.conftest import unlock_phone

pytestmark = pytest.mark.django_db

PR = "PR-2026-0042"


def english(user) -> None:
    Profile.objects.update_or_create(user=user, defaults={"language": "en"})


# --- one format -------------------------------------------------------------------------------


def test_money_and_dates_follow_the_readers_language():
    day = dt.date(2026, 12, 30)
    with translation.override("zh-hans"):
        assert formatting.money(Decimal("12800"), "CNY") == "¥12,800.00"
        assert formatting.money("-99999999", "CNY") == "-¥99,999,999.00"
        assert formatting.number(Decimal("4.5000")) == "4.5" and formatting.number("1200.0000") == "1,200"
        assert formatting.day(day) == "2026年12月30日"
    with translation.override("en"):
        assert formatting.money(Decimal("12800"), "CNY") == "CN¥12,800.00"
        assert formatting.money(Decimal("13400"), "USD") == "$13,400.00"
        assert formatting.day(day) == "Dec 30, 2026"


def test_approval_page_uses_one_format_for_headline_and_line_totals(client, users, demo):
    document = ApprovalDocument.objects.get(external_id=PR)
    client.force_login(users["li.si"])
    html = client.get(document.get_absolute_url()).content.decode()
    headline = formatting.money(document.amount, document.currency, "zh-hans")
    assert f'<p class="amount">{headline}</p>' in html
    for line in document.lines.all():
        assert formatting.money(line.total, document.currency, "zh-hans") in html
    assert not re.search(r">\s*\d{4,}\.\d\d\s*<", html), "an amount without grouping or currency"


# --- the approval page -------------------------------------------------------------------------


def test_approval_page_says_why_it_is_urgent_with_names_and_history_in_words(client, users, demo, committed):
    from approvals import services

    document = ApprovalDocument.objects.get(external_id=PR)
    assert document.urgent and document.urgent_reason  # the demo ERP sends its reason
    with committed():
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="pages-1")
    client.force_login(users["zhang.san"])
    html = client.get(document.get_absolute_url()).content.decode()
    reason = html[html.index('id="urgent-reason"'):]
    assert "紧急" in reason[:200] and document.urgent_reason in reason[:600]
    assert '<dd id="requester">张三</dd>' in html and "李四" in html
    assert "zhang.san" not in html and "li.si" not in html
    history = html[html.index('class="plain history"'):]
    assert "张三 发起申请" in history
    assert re.search(r"已回写 ERP — ERP 单据号 \S+", history), history[:800]


def test_urgent_without_a_reason_says_so(client, users, demo):
    document = ApprovalDocument.objects.get(external_id=PR)
    ApprovalDocument.objects.filter(pk=document.pk).update(urgent_reason="")
    client.force_login(users["li.si"])
    html = client.get(document.get_absolute_url()).content.decode()
    assert "ERP 标为紧急，但未说明原因" in html


def test_card_buttons_ask_before_deciding(client, users, demo):
    from approvals.cards import build

    document = ApprovalDocument.objects.get(external_id=PR)
    card = build(document.topic, users["li.si"])
    approve = next(a for a in card.actions if a.id == "approve")
    assert approve.confirm == f"批准 {PR}（¥12,800.00）？"
    assert card.fields[1].value == "张三"
    unlock_phone(client, users["li.si"])
    html = client.get("/dev/inbox/?user=li.si").content.decode()
    assert f'hx-confirm="批准 {PR}（¥12,800.00）？"' in html


# --- statuses, widgets, charts ---------------------------------------------------------------


def test_order_widget_shows_status_labels_not_codes(client, users, demo):
    client.force_login(users["chen.qi"])
    html = client.get("/w/order/SO-2026-0815/").content.decode()
    assert '<span class="status shipped" id="order-status">已发货</span>' in html
    assert ">shipped<" not in html and " shipped<" not in html
    english(users["chen.qi"])
    html = client.get("/w/order/SO-2026-0815/").content.decode()
    assert 'id="order-status">Shipped</span>' in html


def test_stock_widget_has_available_column_and_forecast_chart(client, users, demo, connector):
    level = StockLevel.objects.get(sku="SKU-123", warehouse="SH")
    now = timezone.now()
    for weeks, quantity in ((6, 90), (4, 70), (2, 55)):
        move = StockMove.objects.create(stock=level, quantity=quantity, delta=-5)
        StockMove.objects.filter(pk=move.pk).update(at=now - dt.timedelta(weeks=weeks))
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version="demand-test-1")
    SeriesForecast.objects.create(connector=connector, sku="SKU-123", warehouse="SH", run=run, method="ets",
                                  forecast=[5, 6, 5, 7, 6, 5, 6, 5], sigma=2.0, fingerprint="x",
                                  history_end=timezone.localdate(), fitted_at=now)
    client.force_login(users["zhao.liu"])
    html = client.get("/w/stock/SKU-123/").content.decode()
    assert "<th class=\"num\">可用</th>" in html
    assert f'<td class="num available">{formatting.number(level.available, "zh-hans")} ' in html
    chart = html[html.index('<figure class="chart-box" data-warehouse="SH">'):]
    chart = chart[:chart.index("</figure>")]
    assert '<polyline class="past"' in chart and '<polygon class="band"' in chart
    assert '<polyline class="forecast"' in chart and '<line class="safety"' in chart
    assert "8 周后约" in chart and "当前可用" in chart  # the chart says it in words too
    assert "<script" not in chart


def test_receivables_widget_has_an_ageing_bar_and_no_mid_string_wraps(client, users, demo):
    client.force_login(users["wang.wu"])
    html = client.get("/w/receivables/customer/华东电子/").content.decode()
    assert '<svg class="chart ageing"' in html and "逾期" in html
    assert '<td class="nowrap">INV-2026-0288</td>' in html
    assert re.search(r'<td class="nowrap">\d{4}年\d{1,2}月\d{1,2}日</td>', html)
    assert "CNY " not in html and "¥" in html


def test_bot_card_without_status_shows_no_empty_pill(client, users, demo):
    from bot.services import ask
    from im.platforms.devinbox.models import DevInboxMessage

    reply = ask(users["wang.wu"], "华东电子的应收")
    assert reply.intent == "receivables" and reply.card is not None
    card = reply.card.to_dict()
    assert card["status_label"] == ""  # the bot's answer cards carry no status
    DevInboxMessage.objects.create(recipient=users["wang.wu"], idempotency_key="pages-bot", card=card)
    unlock_phone(client, users["wang.wu"])
    html = client.get("/dev/inbox/?user=wang.wu").content.decode()
    assert card["title"] in html
    assert not re.search(r'<div class="status [^"]*"></div>', html)


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"


# --- foresight pages -----------------------------------------------------------------------------


@pytest.fixture
def foresight_rows(connector):
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version="demand-pages")
    common = {"connector": connector, "run": run, "unit": "pcs", "supplier": "供应商甲", "on_hand": 10,
              "reorder_point": 40, "erp_reorder_point": 20, "quantity": 60, "unit_price": 100,
              "lead_time_days": 14, "lead_time_demand": 30, "safety_stock": 10, "service_level": 0.95,
              "method": "ets", "weekly_forecast": [15, 15]}
    RestockSuggestion.objects.create(sku="SKU-123", name="伺服电机", warehouse="SH", warehouse_name="上海仓",
                                     days_of_cover=5, **common)
    RestockSuggestion.objects.create(sku="SKU-456", name="直线导轨", warehouse="SZ", warehouse_name="深圳仓",
                                     days_of_cover=9, **common)
    credit = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.CREDIT, version="credit-pages")
    ReceivableRisk.objects.create(connector=connector, run=credit, invoice="INV-2026-0301", customer="华东电子",
                                  amount=50000, outstanding=50000,
                                  due_date=timezone.localdate() + dt.timedelta(days=20),
                                  probability=0.72, reasons=[{"code": "open_overdue", "value": 2}])


def test_restock_page_lists_only_warehouses_the_planner_may_see(client, users, foresight_rows):
    client.force_login(users["zhao.liu"])
    html = client.get("/foresight/restock/").content.decode()
    assert 'data-sku="SKU-123"' in html and 'data-sku="SKU-456"' in html
    assert html.index("SKU-123") < html.index("SKU-456")  # shortest cover first
    assert '<svg class="chart cover"' in html and "再订货点" in html
    rule = PermissionRule.objects.get(name__startswith="库存查看")
    rule.warehouses = ["SZ"]
    rule.save()
    html = client.get("/foresight/restock/").content.decode()
    assert 'data-sku="SKU-456"' in html and 'data-sku="SKU-123"' not in html
    client.force_login(users["chen.qi"])  # sales: no stock rule
    html = client.get("/foresight/restock/").content.decode()
    assert "SKU-" not in html and "没有你可查看的补货建议" in html


def test_receivables_at_risk_page_for_finance_only(client, users, foresight_rows):
    client.force_login(users["wang.wu"])
    html = client.get("/foresight/receivables-at-risk/").content.decode()
    assert 'data-invoice="INV-2026-0301"' in html and "72%" in html and "2 张逾期未付发票" in html
    assert '<svg class="chart probability"' in html and "¥50,000.00" in html
    client.force_login(users["zhao.liu"])
    assert "INV-2026-0301" not in client.get("/foresight/receivables-at-risk/").content.decode()


def test_foresight_pages_need_sign_in(client):
    assert client.get("/foresight/restock/").status_code == 302


# --- admin ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, demo):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    client.force_login(admin)
    return client


def test_explain_page_is_linked_from_rules_users_and_documents(admin_client, users):
    explain = "/admin/sso/permissionrule/explain/"
    rules = admin_client.get("/admin/sso/permissionrule/").content.decode()
    assert f'href="{explain}"' in rules and f'href="{explain}?action=' in rules
    rule = PermissionRule.objects.first()
    rule_page = admin_client.get(f"/admin/sso/permissionrule/{rule.pk}/change/").content.decode()
    assert f'href="{explain}?action=' in rule_page
    user_list = admin_client.get("/admin/auth/user/").content.decode()
    assert f'href="{explain}?user={users["li.si"].pk}"' in user_list
    user_page = admin_client.get(f"/admin/auth/user/{users['li.si'].pk}/change/").content.decode()
    assert f'href="{explain}?user={users["li.si"].pk}"' in user_page
    document = ApprovalDocument.objects.get(external_id=PR)
    link = f"{explain}?action=approvals.decide&amp;kind=approvals.approvaldocument&amp;identifier={PR}"
    assert link in admin_client.get("/admin/approvals/approvaldocument/").content.decode()
    assert link in admin_client.get(f"/admin/approvals/approvaldocument/{document.pk}/change/").content.decode()
    # A link that names no user yet pre-fills the form without "required" errors.
    page = admin_client.get(link.replace("&amp;", "&")).content.decode()
    assert "errorlist" not in page and f'value="{PR}"' in page


def test_explain_shows_each_verdict_once(admin_client, users):
    document = ApprovalDocument.objects.get(external_id=PR)
    page = admin_client.get("/admin/sso/permissionrule/explain/", {
        "user": users["wang.wu"].pk, "action": "approvals.decide", "kind": "approvals.approvaldocument",
        "identifier": PR}).content.decode()
    verdict = page[page.index('class="verdict'):]
    sentences = re.findall(r"<(?:p|li)[^>]*>([^<]+)</(?:p|li)>", verdict)
    assert sentences and len(sentences) == len(set(sentences)), sentences
    assert document.external_id in page


def test_rule_list_shows_actions_and_roles_in_words(admin_client):
    html = admin_client.get("/admin/sso/permissionrule/").content.decode()
    assert '["approvals.view"' not in html and "[&quot;approvals" not in html
    assert "查看审批单据" in html


def test_admin_headers_and_app_names_are_translated(admin_client):
    from sso.models import AccessChange

    rule = PermissionRule.objects.first()
    rule.description = "changed"
    rule.save()  # recorded by sso.audit: the list has a row, so it has column headers
    assert AccessChange.objects.exists()
    changes = admin_client.get("/admin/sso/accesschange/").content.decode()
    headers = re.findall(r'<div class="text"><a [^>]*>([^<]+)</a></div>', changes)
    assert len(headers) == 5 and "操作人" in headers, headers
    assert all(re.search(r"[\u4e00-\u9fff]", h) for h in headers), headers  # no ACTOR NAME, AT, OBJECT REPR
    events = admin_client.get("/admin/erp/inboundevent/").content.decode()
    assert "Received at" not in events and "接收时间" in events
    index = admin_client.get("/admin/").content.decode()
    assert "Axes" not in index and "Dev inbox" not in index and "登录锁定" in index


def test_dev_inbox_phone_speaks_its_owners_language(client, users, demo):
    english(users["li.si"])
    unlock_phone(client, users["li.si"])
    html = client.get("/dev/inbox/?user=li.si").content.decode()
    phone = html[html.index('class="phone"'):]
    assert ">Send</button>" in phone and "Message to the bot" in phone
    assert ">发送</button>" not in phone  # the frame follows li.si's profile, like the cards
    assert '<html lang="zh-hans">' in html  # the page around the phones stays in the viewer's language


def test_pinned_widget_needs_no_emoji_font():
    from pathlib import Path

    # The group page and the partial it includes (and refetches live) for its messages and pinned widgets.
    templates = Path(__file__).resolve().parent.parent / "im/platforms/devinbox/templates/devinbox"
    text = "".join((templates / name).read_text(encoding="utf-8") for name in ("group.html", "_group_messages.html"))
    assert "📌" not in text and '<svg class="icon"' in text
