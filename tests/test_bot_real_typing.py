"""The bot as people really type (issue #20): a question is never a decision, only marked text is
the ERP comment, unknown and hidden names answer "找不到…" without echoing a real name, the measure
asked is the measure answered, requisitions and orders by number fragment or item, follow-ups,
pinyin, everyday words and typos, ambiguity asks back, the question's language, one pending list."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from approvals.models import Decision
from bot import parser
from bot.models import BotExchange
from bot.services import ask, press
from sso.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_context():
    cache.clear()
    yield
    cache.clear()


def reply_json(reply) -> str:
    return json.dumps(reply.as_dict(), ensure_ascii=False)


def test_a_question_is_never_a_decision(users):
    li = users["li.si"]
    for text in ("PR-2026-0043 通过了没有，装配线急用", "PR-2026-0044 审核通过没", "是否已批准 PR-2026-0042",
                 "PR-2026-0043 批了吗", "has PR-2026-0042 been approved", "did you reject PR-2026-0044",
                 "was PR-2026-0043 approved?", "should I approve PR-2026-0044?", "PR-2026-0042 能不能批"):
        reply = ask(li, text)
        assert reply.intent == "approvals.status", text
        assert "outcome" not in reply.entities and "comment" not in reply.entities, text
        assert not reply.card.actions, text
    assert not BotExchange.objects.filter(user=li, pending_action__isnull=False).exists()


def test_only_marked_text_is_the_comment_and_the_card_restates_what_is_written(users, committed):
    li = users["li.si"]
    for text in ("批准 PR-2026-0043 lgtm", "同意PR-2026-0043吧", "approve PR-2026-0043 ok thanks"):
        reply = ask(li, text)
        assert reply.entities == {"document": "PR-2026-0043", "outcome": "approved"}, text
        assert "写入 ERP: 批准 · 无意见" in reply.text or "Written to the ERP: Approve · no comment" in reply.text
    marked = {
        "驳回 PR-2026-0044，备注：数量太多": "数量太多",
        "reject PR-2026-0044 because the price is too high": "the price is too high",
        "approve PR-2026-0044 “ok to order”": "ok to order",
        "拒绝 PR-2026-0044 原因:「重复申请」": "重复申请",
    }
    for text, comment in marked.items():
        assert ask(li, text).entities.get("comment") == comment, text
    reply = ask(li, "驳回 PR-2026-0044，备注：数量太多")
    assert "写入 ERP: 驳回 · 意见“数量太多”" in reply.text
    with committed():
        press(li, reply.exchange_id, "confirm")
    decision = Decision.objects.get(document__external_id="PR-2026-0044")
    assert decision.outcome == "rejected" and decision.comment == "数量太多"


def test_a_decision_needs_one_document_else_the_bot_asks_which(users):
    li = users["li.si"]
    for text in ("approve", "批准", "驳回吧", "approve all", "全部通过"):
        reply = ask(li, text)
        assert reply.intent == "clarify" and not reply.card.actions, text
        assert reply.card.title in ("您指的是哪一张单据？", "Which document do you mean?")
    for text in ("how much?", "多少钱", "status?"):
        reply = ask(users["wang.wu"], text)
        assert reply.intent == "clarify" and "¥" not in reply.text, text
    for text in ("我们公司股价多少", "what's the ACME share price"):
        reply = ask(users["zhao.liu"], text)
        assert reply.intent == "unknown" and reply.card.status == "unknown", text
        assert "安全库存 " not in reply_json(reply) and "safety level " not in reply_json(reply), text  # no stock list


def test_follow_ups_resolve_against_the_last_document_or_entity(users):
    li, wang = users["li.si"], users["wang.wu"]
    ask(li, "PR-2026-0043 到哪一步了", conversation="a")
    reply = ask(li, "approve it", conversation="a")
    assert reply.intent == "approvals.decide" and reply.entities == {"document": "PR-2026-0043", "outcome": "approved"}
    assert [a.id for a in reply.card.actions] == ["confirm", "cancel"]
    assert ask(li, "has it been approved?", conversation="a").entities == {"document": "PR-2026-0043"}
    reply = ask(li, "驳回它，备注：预算不足", conversation="a")
    assert reply.entities == {"document": "PR-2026-0043", "outcome": "rejected", "comment": "预算不足"}
    ask(wang, "SO-2026-0815 发货了吗", conversation="b")
    assert ask(wang, "what about 0821?", conversation="b").entities == {"order": "SO-2026-0821"}
    ask(wang, "项目A的应收", conversation="c")
    reply = ask(wang, "那B呢", conversation="c")
    assert reply.intent == "receivables" and reply.entities == {"project": "项目B"}


def test_unknown_names_answer_not_found_with_names_the_asker_may_see(users):
    wang = users["wang.wu"]
    reply = ask(wang, "项目D的应收")
    assert reply.intent == "receivables" and reply.entities == {"unknown": "项目D"}
    assert reply.card.title == "找不到项目D" and "¥" not in reply.text  # never all receivables
    assert "项目" in reply_json(reply).split("您是不是要找")[1]  # did you mean: the projects wang.wu sees
    for text, name in (("天津重工欠我们多少", "天津重工"), ("receivables for Globex", "globex"),
                       ("orders from Initech", "initech")):
        reply = ask(wang, text)
        assert reply.entities == {"unknown": name} and reply.card.status == "empty", text


def test_hidden_names_get_the_unknown_answer_and_are_never_echoed(users):
    chen, zhao = users["chen.qi"], users["zhao.liu"]
    hidden = ask(chen, "ACME欠多少钱")  # a house account: not chen.qi's customer
    assert hidden.entities == {"unknown": "acme"} and "ACME Corp" not in reply_json(hidden)
    missing = ask(chen, "Globex欠多少钱")
    assert hidden.card.title.replace("acme", "X") == missing.card.title.replace("globex", "X")
    assert hidden.card.fields == missing.card.fields or "ACME" not in json.dumps(
        [f.value for f in hidden.card.fields], ensure_ascii=False)
    for text in ("east china receivables", "华东的订单", "hddz 的应收"):
        reply = ask(zhao, text)  # a warehouse keeper sees no customers at all
        assert "华东电子" not in reply_json(reply) and "East China Electronics" not in reply_json(reply), text
        assert "unknown" in reply.entities and "customer" not in reply.entities, text
    reply = ask(chen, "申请 0042 到哪了")  # chen.qi may not see PR-2026-0042: the fragment is not resolved
    assert "PR-2026-0042" not in reply_json(reply) and "伺服" not in reply_json(reply)


def test_outstanding_overdue_collected_and_invoiced_are_different_questions(users):
    wang = users["wang.wu"]
    # 华东电子: INV-0301 86,500 (40,000 paid) and INV-0288 32,000 (overdue, unpaid).
    outstanding = ask(wang, "华东电子还有多少钱没收回来")
    assert outstanding.entities == {"customer": "华东电子"} and outstanding.card.amount == "¥78,500.00"
    assert ask(wang, "how much is left to collect from East China Electronics").card.amount == "CN¥78,500.00"
    collected = ask(wang, "华东电子已经回了多少款")
    assert collected.entities == {"customer": "华东电子", "collected": True}
    assert "¥40,000.00" in collected.text
    invoiced = ask(wang, "给华东电子开了多少票")
    assert invoiced.entities == {"customer": "华东电子", "invoiced": True} and invoiced.card.amount == "¥118,500.00"
    overdue = ask(wang, "华东电子逾期多少")
    assert overdue.entities == {"customer": "华东电子", "overdue": True} and "INV-2026-0301" not in overdue.text


def test_requisitions_by_mine_number_fragment_and_item_are_status_questions(users):
    zhang, li = users["zhang.san"], users["li.si"]
    for text in ("我的采购申请", "my purchase requests", "status of my requisitions"):
        reply = ask(zhang, text)
        assert reply.intent == "approvals.status" and reply.entities == {"mine": True}, text
        assert "PR-2026-0042" in reply.text and "PR-2026-0044" in reply.text
    for text, number in (("申请0043进度", "PR-2026-0043"), ("PR 44 status", "PR-2026-0044"),
                         ("轴承的采购申请", "PR-2026-0044"), ("requisition for the linear guide rail", "PR-2026-0043"),
                         ("caigou shenqing 0042 zhuangtai", "PR-2026-0042")):
        reply = ask(li, text)
        assert reply.intent == "approvals.status" and reply.entities == {"document": number}, text
    assert ask(users["wang.wu"], "expense claim 107").entities == {"document": "EC-2026-0107"}


def test_orders_by_customer_and_number_fragment(users):
    wang = users["wang.wu"]
    reply = ask(wang, "华东电子的订单发货了吗")
    assert reply.intent == "orders" and reply.entities == {"customer": "华东电子"}
    assert "SO-2026-0815" in reply.text and "SO-2026-0809" in reply.text  # not filtered to "shipped"
    assert ask(wang, "has ACME's order shipped yet").entities == {"customer": "ACME Corp"}
    for text, number in (("订单0821", "SO-2026-0821"), ("order 816 status", "SO-2026-0816"),
                         ("0815 订单到哪了", "SO-2026-0815")):
        reply = ask(wang, text)
        assert reply.intent == "orders" and reply.entities == {"order": number}, text
    assert ask(wang, "哪些订单延期了").entities == {"status": "delayed"}


def test_pinyin_everyday_words_and_one_character_typos(demo):
    cases = {
        "kucun buzu de you naxie": ("stock", {"below_safety": True}),
        "xiangmu A yingshou": ("receivables", {"project": "项目A"}),
        "yanqi de dingdan": ("orders", {"status": "delayed"}),
        "螺丝还有多少": ("stock", {"sku": "SKU-305"}),
        "垫圈够不够": ("stock", {"sku": "SKU-306"}),
        "how many screws left": ("stock", {"sku": "SKU-305"}),
        "轴成还有多少": ("stock", {"sku": "SKU-201"}),
        "交换鸡库存": ("stock", {"sku": "SKU-512"}),
        "servo moter stock": ("stock", {"sku": "SKU-123"}),
    }
    for text, (intent, entities) in cases.items():
        parsed = parser.parse(text)
        assert (parsed.intent, parsed.entities) == (intent, entities), text


def test_the_answer_is_in_the_language_of_the_question_when_the_profile_has_none(users):
    wang = users["wang.wu"]
    assert not Profile.objects.get(user=wang).language
    assert ask(wang, "how much does ACME owe").card.title == "Receivables: ACME Corp"
    assert ask(wang, "ACME欠多少钱").card.title == "应收款: ACME Corp"
    Profile.objects.filter(user=wang).update(language="en")
    wang.refresh_from_db()
    assert ask(wang, "ACME欠多少钱").card.title == "Receivables: ACME Corp"  # the profile wins


def test_what_waits_for_me_is_one_selector_and_a_short_list_says_so(users, monkeypatch, client):
    from approvals import answers as bot_approvals
    from approvals.selectors import pending_page
    from approvals.widgets import pending_view

    li = users["li.si"]
    everything = pending_page(li)
    assert everything.total == 3 and not everything.shortened
    assert [d.pk for d in pending_view(li).documents] == [d.pk for d in everything.documents]
    client.force_login(li)
    page = client.get("/approvals/")
    assert [d.pk for d in page.context["pending"]] == [d.pk for d in everything.documents]
    assert [f.label for f in ask(li, "我的待审批").card.fields] == [d.external_id for d in everything.documents]
    monkeypatch.setattr(bot_approvals, "LIMIT", 2)
    reply = ask(li, "我的待审批")
    assert len(reply.card.fields) == 2 and reply.card.amount == "显示 2 条，共 3 条待审批"
    assert ask(li, "what's waiting for me").card.amount == "2 of 3 waiting"


def test_the_pending_widget_heading_says_how_many_it_leaves_out(users):
    from django.template.loader import render_to_string
    from django.utils import translation

    from approvals.selectors import pending_page

    page = pending_page(users["li.si"], 2)
    assert page.shortened and len(page.documents) == 2 and page.total == 3
    context = {"page": page, "pending": page.documents, "topic": "inbox.1", "version": 0}
    with translation.override("en"):
        assert "My pending approvals (2 of 3)" in render_to_string("widgets/pending_body.html", context)
    with translation.override("zh-hans"):
        assert "(共 3 条，显示 2 条)" in render_to_string("widgets/pending_body.html", context)
    whole = pending_page(users["li.si"], 20)
    assert not whole.shortened
    assert "of 3" not in render_to_string("widgets/pending_body.html", {**context, "page": whole})
