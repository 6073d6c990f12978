"""The chat bot (bot/): every kind of question in Chinese and English answered from the demo data
for the asker, nothing leaked, groups see only what all members may see, approvals only after the
confirm button and through decide(), the API, and the dev inbox chat form."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from approvals.models import ApprovalDocument, Decision
from bot import parser
from bot.models import BotExchange
from bot.periods import find_period, resolve
from bot.services import ask, press
from finance.models import Receivable
from im.platforms.devinbox.models import DevInboxMessage
from sso.models import Profile
from tests.conftest import unlock_phone

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_context():
    cache.clear()  # follow-up context lives in the cache
    yield
    cache.clear()


def english(user):
    Profile.objects.update_or_create(user=user, defaults={"language": "en"})
    user.refresh_from_db()
    return user


def card_text(reply) -> str:
    card = reply.card.to_dict()
    return json.dumps(card, ensure_ascii=False)


# --- every kind of question, both languages ------------------------------------------------------

def test_receivables_by_project_and_customer_in_chinese(users):
    reply = ask(users["wang.wu"], "@bot 查询项目A的收款情况")
    assert reply.intent == "receivables" and reply.entities == {"project": "项目A"}
    # 项目A: INV-2026-0301 (86,500 − 40,000) and INV-2026-0288 (32,000, overdue).
    assert reply.card.amount == "¥78,500.00"
    assert "INV-2026-0288" in card_text(reply) and "逾期" in card_text(reply)
    reply = ask(users["wang.wu"], "华东电子还欠多少钱")
    assert reply.entities == {"customer": "华东电子"} and reply.card.amount == "¥78,500.00"


def test_receivables_overdue_for_a_customer_in_english(users):
    reply = ask(english(users["wang.wu"]), "overdue receivables for customer ACME")
    assert reply.intent == "receivables" and reply.entities == {"customer": "ACME Corp", "overdue": True}
    assert reply.card.amount == "$13,400.00"  # USD, formatted for English
    assert "INV-2026-0290" in card_text(reply)


def test_collected_this_month_uses_payment_dates_in_the_users_time_zone(users):
    today = timezone.localdate()
    Receivable.objects.filter(external_id="INV-2026-0301").update(last_payment_date=today)
    Receivable.objects.filter(external_id="INV-2026-0270").update(last_payment_date=today - dt.timedelta(days=70))
    reply = ask(users["wang.wu"], "本月回款多少")
    assert reply.intent == "receivables" and reply.entities == {"period": "this_month", "collected": True}
    assert reply.period["start"] == today.replace(day=1).isoformat()
    assert reply.card.amount == "¥40,000.00"  # INV-2026-0301 only; INV-2026-0270 was paid earlier


def test_stock_by_sku_item_name_and_warehouse(users):
    reply = ask(users["zhao.liu"], "SKU-123 还有多少库存")
    assert reply.intent == "stock" and reply.entities == {"sku": "SKU-123"}
    assert "20" in reply.card.amount  # 6 in Shanghai + 14 in Suzhou
    reply = ask(users["zhao.liu"], "伺服电机在上海仓有多少")
    assert reply.entities == {"sku": "SKU-123", "warehouse": "SH"}
    assert [f.label for f in reply.card.fields] == ["上海仓"] and reply.card.fields[0].value.startswith("6 台")
    reply = ask(users["zhao.liu"], "伺服电击库存")  # a typo (homophone)
    assert reply.entities == {"sku": "SKU-123"}


def test_stock_below_safety_level_in_english(users):
    reply = ask(english(users["zhao.liu"]), "which items are below safety stock")
    assert reply.intent == "stock" and reply.entities == {"below_safety": True}
    text = card_text(reply)
    assert all(sku in text for sku in ("SKU-123", "SKU-201", "SKU-305")) and "SKU-124" not in text


def test_orders_by_number_and_mine_shipped_this_week(users):
    reply = ask(users["chen.qi"], "订单 SO-2026-0815 到哪了")
    assert reply.intent == "orders" and reply.entities == {"order": "SO-2026-0815"}
    assert reply.card.amount == "¥86,500.00" and "华东电子" in card_text(reply)
    reply = ask(english(users["chen.qi"]), "status of my orders shipped this week")
    assert reply.entities == {"mine": True, "status": "shipped", "period": "this_week"}
    assert [f.label for f in reply.card.fields] == ["SO-2026-0815"]


def test_pending_approvals_and_who_has_not_approved(users):
    reply = ask(users["li.si"], "我的待审批")
    assert reply.intent == "approvals.pending"
    assert [f.label for f in reply.card.fields][:1] == ["PR-2026-0042"]  # urgent first
    reply = ask(english(users["li.si"]), "my pending approvals")
    assert reply.intent == "approvals.pending" and "PR-2026-0043" in card_text(reply)
    reply = ask(users["li.si"], "谁还没批 PR-2026-0042")
    assert reply.intent == "approvals.status" and reply.entities == {"document": "PR-2026-0042"}
    assert "李四" in card_text(reply)
    reply = ask(users["li.si"], "who hasn't approved PR-2026-0043 yet")
    assert reply.intent == "approvals.status" and reply.entities == {"document": "PR-2026-0043"}


def test_help_and_fallback_are_never_silent(users):
    reply = ask(users["li.si"], "帮助")
    assert reply.intent == "help" and "SKU-123" in card_text(reply)
    reply = ask(english(users["chen.qi"]), "what's the weather like")
    assert reply.intent == "unknown" and reply.card.fields and reply.text


def test_fallback_suggests_only_names_the_asker_may_see(users):
    from bot.answers.base import Context
    from bot.answers.help import render_unknown

    def suggested(user) -> str:
        ctx = Context(user, "zh-hans", timezone.localdate())
        answer = render_unknown([("customer", "华东电子"), ("sku", "SKU-123")], ctx)
        return " ".join(f.value for f in answer.fields if f.label == "您是不是要找")

    # 赵六 sees stock, not receivables or orders; 陈七 the other way round.
    assert suggested(users["zhao.liu"]) == "伺服电机 (SKU-123)"
    assert suggested(users["chen.qi"]) == "华东电子"
    assert ask(users["chen.qi"], "今天天气怎么样").intent == "unknown"


def test_follow_up_keeps_context_per_conversation(users):
    ask(users["wang.wu"], "华东电子逾期的应收", conversation="c1")
    reply = ask(users["wang.wu"], "那ACME呢", conversation="c1")
    assert reply.intent == "receivables" and reply.entities == {"customer": "ACME Corp", "overdue": True}
    ask(users["zhao.liu"], "伺服电机在上海仓有多少", conversation="c2")
    reply = ask(users["zhao.liu"], "那苏州仓呢", conversation="c2")
    assert reply.intent == "stock" and reply.entities == {"sku": "SKU-123", "warehouse": "SZ"}
    # Another conversation starts afresh.
    assert ask(users["zhao.liu"], "那苏州仓呢", conversation="c3").entities == {"warehouse": "SZ"}


# --- nothing leaks -----------------------------------------------------------------------------

def test_sales_rep_asking_about_stock_gets_no_stock(users):
    reply = ask(users["chen.qi"], "SKU-123 还有多少库存")
    assert reply.card.status == "empty" and not reply.card.amount
    assert "伺服电机" not in card_text(reply) and "台" not in card_text(reply)


def test_warehouse_keeper_asking_about_receivables_gets_nothing(users):
    for text in ("华东电子还欠多少钱", "overdue receivables", "本月回款多少", "项目A的应收"):
        reply = ask(users["zhao.liu"], text)
        assert reply.intent == "receivables"
        assert "¥" not in card_text(reply) and "INV-" not in card_text(reply)


def test_hidden_document_looks_exactly_like_a_missing_one(users):
    def shown(text: str) -> dict:
        card = ask(users["chen.qi"], text).card.to_dict()
        card.pop("topic")
        return card

    for template in ("谁还没批 {}", "approve {}", "批准 {} 同意", "{} 到哪一步了"):
        hidden, missing = shown(template.format("PR-2026-0042")), shown(template.format("PR-2026-0999"))
        assert json.dumps(hidden).replace("0042", "X") == json.dumps(missing).replace("0999", "X")
    assert BotExchange.objects.filter(user=users["chen.qi"], pending_action__isnull=False).count() == 0


# --- groups --------------------------------------------------------------------------------------

def test_group_answer_shows_only_what_every_member_may_see(users):
    # 王五 sees every receivable of 项目B; 陈七 only his own customers' (not ACME's USD invoice).
    reply = ask(users["wang.wu"], "项目B的应收", audience=[users["wang.wu"], users["chen.qi"]])
    public, private = card_text(reply), json.dumps(reply.private_part.to_dict(), ensure_ascii=False)
    assert "INV-2026-0305" in public and "INV-2026-0290" not in public
    assert "INV-2026-0290" in private and "INV-2026-0305" in private
    assert "已私信给你" in public
    # Alone, the same question needs no private part.
    assert ask(users["wang.wu"], "项目B的应收").private_part is None


def test_group_with_a_member_without_rights_shows_nothing_publicly(users):
    reply = ask(users["wang.wu"], "华东电子还欠多少钱", audience=[users["zhao.liu"], users["wang.wu"]])
    assert "¥" not in card_text(reply) and "INV-" not in card_text(reply)
    assert reply.private_part is not None and reply.private_part.amount == "¥78,500.00"


def test_decision_in_a_group_goes_to_the_asker_only(users):
    reply = ask(users["li.si"], "approve PR-2026-0042", audience=[users["li.si"], users["zhang.san"]])
    assert reply.card.actions == [] and [a.id for a in reply.private_part.actions] == ["confirm", "cancel"]


# --- approve via the bot --------------------------------------------------------------------------

def test_approve_needs_the_confirm_button_and_goes_through_decide(users, committed, monkeypatch):
    from approvals import answers as cards  # the bot's confirm button is the approvals intent's

    calls = []
    real_decide = cards.decide

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(cards, "decide", spy)
    reply = ask(users["li.si"], "批准 PR-2026-0042 意见：同意")  # only marked text is the comment
    assert reply.intent == "approvals.decide"
    assert reply.entities == {"document": "PR-2026-0042", "outcome": "approved", "comment": "同意"}
    assert [a.id for a in reply.card.actions] == ["confirm", "cancel"]
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    assert document.status == "pending" and not Decision.objects.filter(document=document).exists()

    assert "批准" not in press(users["zhang.san"], reply.exchange_id, "confirm")  # not his answer: nothing happens
    assert not Decision.objects.filter(document=document).exists()
    with committed():
        result = press(users["li.si"], reply.exchange_id, "confirm")
    assert result and "批准" in result
    decision = Decision.objects.get(document=document)
    assert decision.actor == users["li.si"] and decision.via == "bot" and decision.comment == "同意"
    assert calls and calls[0]["via"] == "bot"
    # Pressing again changes nothing.
    assert press(users["li.si"], reply.exchange_id, "confirm") == result
    assert Decision.objects.filter(document=document).count() == 1


def test_cancel_decides_nothing_and_the_requester_cannot_approve(users):
    reply = ask(users["li.si"], "reject PR-2026-0043 budget")
    press(users["li.si"], reply.exchange_id, "cancel")
    assert ApprovalDocument.objects.get(external_id="PR-2026-0043").status == "pending"
    reply = ask(users["zhang.san"], "批准 PR-2026-0042")  # his own request: he may see it, not decide it
    assert reply.card.actions == [] and reply.card.status == "refused"


# --- API -----------------------------------------------------------------------------------------

def test_api_ask(client, users):
    assert client.post("/api/bot/ask", {"text": "help"}, content_type="application/json").status_code in (401, 403)
    client.force_login(users["zhao.liu"])
    response = client.post("/api/bot/ask", {"text": "SKU-123 还有多少库存"}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["intent"] == "stock" and body["entities"] == {"sku": "SKU-123"}
    assert body["answer"]["card"]["title"].startswith("库存") and "20" in body["answer"]["card"]["amount"]
    assert BotExchange.objects.get(pk=body["answer"]["exchange"]).intent == "stock"
    period = client.post("/api/bot/ask", {"text": "上个月的应收"}, content_type="application/json").json()
    assert period["entities"]["period"]["key"] == "last_month"
    assert client.post("/api/bot/ask", {"text": ""}, content_type="application/json").status_code == 400


def test_api_confirm_button(client, users, committed):
    client.force_login(users["li.si"])
    body = client.post("/api/bot/ask", {"text": "approve PR-2026-0044"}, content_type="application/json").json()
    exchange = body["answer"]["exchange"]
    other = Client()
    other.force_login(users["wang.wu"])
    assert other.post(f"/api/bot/exchanges/{exchange}/actions/confirm").status_code == 404
    with committed():
        response = client.post(f"/api/bot/exchanges/{exchange}/actions/confirm")
    assert response.status_code == 200
    assert ApprovalDocument.objects.get(external_id="PR-2026-0044").status == "approved"


def test_api_schema_documents_the_bot(client, users):
    client.force_login(users["li.si"])
    schema = client.get("/api/schema/").content.decode()
    assert "/api/bot/ask" in schema


# --- dev inbox -----------------------------------------------------------------------------------

def test_dev_inbox_phone_sends_a_message_and_shows_the_answer_card(users, committed):
    li = users["li.si"]
    client = Client()
    unlock_phone(client, li)
    page = client.get("/dev/inbox/?user=li.si").content.decode()
    assert f'hx-post="/dev/inbox/phone/{li.pk}/ask/"' in page
    csrf = Client(enforce_csrf_checks=True)
    assert csrf.post(f"/dev/inbox/phone/{li.pk}/ask/", {"text": "我的待审批"}).status_code == 403
    with committed():
        response = client.post(f"/dev/inbox/phone/{li.pk}/ask/", {"text": "批准 PR-2026-0043 同意"},
                               headers={"HX-Request": "true"})
    assert response.status_code == 200
    message = DevInboxMessage.objects.filter(recipient=li, card__topic__startswith="bot.").get()
    assert "PR-2026-0043" in message.card["title"]
    # In a test the outbox sends after the response (on commit); the phone shows it on its next refresh.
    assert "批准 PR-2026-0043 同意" in client.get(f"/dev/inbox/phone/{li.pk}/").content.decode()
    assert [a["id"] for a in message.card["actions"]] == ["confirm", "cancel"]
    # The confirm button on the phone: handle_card_action -> decide().
    with committed():
        client.post(f"/dev/inbox/message/{message.pk}/action/confirm/", headers={"HX-Request": "true"})
    assert ApprovalDocument.objects.get(external_id="PR-2026-0043").status == "approved"
    message.refresh_from_db()
    assert message.card["actions"] == [] and message.revision > 1


# --- parser and periods --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "key"), [
    ("上个月", "last_month"), ("本季度", "this_quarter"), ("last week", "last_week"), ("3月", "month:3"),
    ("this week", "this_week"), ("最近7天", "days:7"), ("in March", "month:3"), ("去年", "last_year"),
])
def test_periods(text, key):
    found = find_period(text)
    assert found and found[0] == key


def test_period_ranges():
    today = dt.date(2026, 1, 14)  # a Wednesday
    assert resolve("last_month", today).start == dt.date(2025, 12, 1)
    assert resolve("last_month", today).end == dt.date(2025, 12, 31)
    assert (resolve("last_week", today).start, resolve("last_week", today).end) == (dt.date(2026, 1, 5),
                                                                                      dt.date(2026, 1, 11))
    assert resolve("this_quarter", today).end == dt.date(2026, 3, 31)
    assert resolve("month:3", today).start == dt.date(2025, 3, 1)  # the latest March that has begun
    assert resolve("last_quarter", today).start == dt.date(2025, 10, 1)


def test_today_is_the_users_day(users, settings):
    from bot.periods import today_for

    now = timezone.now()
    assert today_for("Pacific/Kiritimati") != today_for("Pacific/Pago_Pago")  # UTC+14 vs UTC−11
    assert today_for("UTC") == now.date()


def test_parser_typos_pinyin_and_mixed_language(demo):
    assert parser.parse("hddz欠多少").entities == {"customer": "华东电子"}
    assert parser.parse("inventroy of servo motor").entities == {"sku": "SKU-123"}
    assert parser.parse("ACME 的 overdue 金额").entities == {"customer": "ACME Corp", "overdue": True}
    assert parser.parse("sfdj 还有多少").entities == {"sku": "SKU-123"}  # 伺服 read as sì fú
    assert parser.parse("is PR-2026-0043 approved yet").intent == "approvals.status"


def test_every_answer_is_logged_with_its_intent(users):
    ask(users["li.si"], "SKU-123 还有多少库存", channel="api")
    exchange = BotExchange.objects.get(user=users["li.si"])
    assert exchange.intent == "stock" and exchange.entities == {"sku": "SKU-123"} and exchange.answer


# --- optional model backend ----------------------------------------------------------------------

@pytest.fixture
def fake_model(settings):
    """A stand-in OpenAI-compatible endpoint that answers every question with ``calls[0]``."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    calls: list[dict] = [{"name": "receivables", "arguments": json.dumps({"customer": "华东电子"})}]
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"choices": [{"message": {"role": "assistant", "tool_calls": [
                {"id": "1", "type": "function", "function": calls[0]}]}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.BOT_MODEL_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.BOT_MODEL_NAME = "test"
    yield calls, seen
    server.shutdown()


def test_model_backend_is_off_by_default_and_only_asked_when_the_parser_fails(users, fake_model, settings):
    calls, seen = fake_model
    assert ask(users["wang.wu"], "SKU-123 还有多少库存").extra["source"] == "parser" and not seen
    reply = ask(users["wang.wu"], "那个做电子的老客户现在怎么样了")
    assert seen and {t["function"]["name"] for t in seen[0]["tools"]} >= {"receivables", "stock", "orders"}
    assert "approvals_decide" not in json.dumps(seen[0]["tools"])  # queries only, never a decision
    assert reply.intent == "receivables" and reply.entities == {"customer": "华东电子"}
    assert reply.extra["source"] == "model" and reply.card.amount == "¥78,500.00"
    # The same selectors filter the model's choice: 赵六 still sees no receivables.
    assert "¥" not in card_text(ask(users["zhao.liu"], "那个做电子的老客户现在怎么样了"))
    settings.BOT_MODEL_URL = ""
    assert ask(users["wang.wu"], "那个做电子的老客户现在怎么样了").intent == "unknown"


@pytest.mark.parametrize("call", [
    {"name": "receivables", "arguments": json.dumps({"customer": "x' OR 1=1 --"})},
    {"name": "approvals_decide", "arguments": json.dumps({"document": "PR-2026-0042"})},
    {"name": "receivables", "arguments": json.dumps({"sql": "select * from finance_receivable"})},
    {"name": "approvals_status", "arguments": json.dumps({"document": "../../etc"})},
])
def test_model_backend_choices_outside_the_typed_functions_are_refused(users, fake_model, call):
    calls, _seen = fake_model
    calls[0] = call
    reply = ask(users["wang.wu"], "那个做电子的老客户现在怎么样了")
    assert reply.intent == "unknown" and reply.extra["source"] == "parser"


def test_model_backend_set_in_admin_wins_and_keeps_its_key_encrypted(users, fake_model, settings, admin_client):
    from django.db import connection

    from bot.models import ModelBackend

    calls, seen = fake_model
    url = settings.BOT_MODEL_URL
    settings.BOT_MODEL_URL = ""  # nothing from the environment: admin alone switches it on
    question = "那个做电子的老客户现在怎么样了"
    assert ask(users["wang.wu"], question).intent == "unknown" and not seen

    response = admin_client.post("/admin/bot/modelbackend/add/", {
        "enabled": "on", "base_url": url, "model_name": "qwen-test", "api_key": "sk-admin-secret", "timeout": "3"})
    assert response.status_code == 302, response.content.decode()[:2000]
    reply = ask(users["wang.wu"], question)
    assert reply.intent == "receivables" and reply.extra["source"] == "model"
    assert seen[-1]["model"] == "qwen-test"

    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM bot_modelbackend")
        (stored,) = cursor.fetchone()
    assert stored.startswith("gAAAAA") and "sk-admin-secret" not in stored
    page = admin_client.get("/admin/bot/modelbackend/1/change/").content.decode()
    assert "sk-admin-secret" not in page
    # Saving without typing the key again keeps it.
    admin_client.post("/admin/bot/modelbackend/1/change/", {
        "enabled": "on", "base_url": url, "model_name": "qwen-test", "api_key": "", "timeout": "3"})
    assert ModelBackend.objects.get().api_key == "sk-admin-secret"

    # The admin action asks a probe question and says what the backend chose.
    calls[0] = {"name": "stock", "arguments": json.dumps({"sku": "SKU-123"})}
    done = admin_client.post("/admin/bot/modelbackend/", {"action": "try_backend", "_selected_action": ["1"]},
                             follow=True)
    assert "stock" in done.content.decode() and "SKU-123" in done.content.decode()

    ModelBackend.objects.update(enabled=False)
    assert ask(users["wang.wu"], question).intent == "unknown"


def test_model_backend_endpoint_must_be_http(admin_client, db):
    response = admin_client.post("/admin/bot/modelbackend/add/", {
        "enabled": "on", "base_url": "file:///etc/passwd", "model_name": "m", "api_key": "", "timeout": "3"})
    assert response.status_code == 200 and "http://" in response.content.decode()


def test_retention_purges_old_exchanges(users):
    from django.core.management import call_command

    ask(users["li.si"], "help")
    BotExchange.objects.update(created_at=timezone.now() - dt.timedelta(days=400))
    ask(users["li.si"], "help")
    call_command("purge_bot_exchanges", verbosity=0)
    assert BotExchange.objects.count() == 1


def test_dev_inbox_group_chat_answer_is_public_for_all_members_and_private_for_the_rest(users, committed):
    from im.platforms.devinbox.models import DevInboxGroup

    wang, chen = users["wang.wu"], users["chen.qi"]
    chat = DevInboxGroup.objects.create(idempotency_key="t1", name="项目B 应收",
                                        members=[str(wang.pk), str(chen.pk)])
    client = Client()
    unlock_phone(client, wang)  # the person writing has signed in to their phone
    page = client.get(f"/dev/inbox/group/{chat.pk}/").content.decode()
    assert f'action="/dev/inbox/group/{chat.pk}/ask/"' in page and f'value="{wang.pk}"' in page
    with committed():
        response = client.post(f"/dev/inbox/group/{chat.pk}/ask/", {"member": wang.pk, "text": "@bot 项目B的应收"})
    assert response.status_code == 302
    public = json.dumps([m.card for m in chat.messages.all()], ensure_ascii=False)
    assert "INV-2026-0305" in public and "INV-2026-0290" not in public and "已私信给你" in public
    private = DevInboxMessage.objects.get(recipient=wang, card__topic__startswith="bot.")
    assert "INV-2026-0290" in json.dumps(private.card, ensure_ascii=False)
    assert not DevInboxMessage.objects.filter(recipient=chen, card__topic__startswith="bot.").exists()
    # An external guest in the chat: the public answer shows nothing at all.
    guest = DevInboxGroup.objects.create(idempotency_key="t2", name="供应商群", members=[str(wang.pk), "ext:x@y.cn"])
    with committed():
        client.post(f"/dev/inbox/group/{guest.pk}/ask/", {"member": wang.pk, "text": "项目B的应收"})
    assert "INV-" not in json.dumps([m.card for m in guest.messages.all()], ensure_ascii=False)
    # Only members may speak.
    assert client.post(f"/dev/inbox/group/{guest.pk}/ask/", {"member": chen.pk, "text": "hi"}).status_code == 400
    # And only as someone this browser proved to be: chen.qi's phone is not signed in here.
    assert client.post(f"/dev/inbox/group/{chat.pk}/ask/", {"member": chen.pk, "text": "@bot hi"}).status_code == 404
    assert Client().get(f"/dev/inbox/group/{chat.pk}/").status_code == 404
