"""Seeded demo ERP → the beat jobs → cards in the dev inbox → the restock card's button creates a
requisition in the ERP, which arrives as an approval card like any other."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument
from erp.connectors.demo import services as erp
from erp.connectors.demo.models import PurchaseRequisition
from foresight import cards, services, tasks
from foresight.models import ExpenseScore, Feedback, ModelRun, ReceivableRisk, RestockSuggestion, SeriesForecast
from im.platforms.devinbox.models import DevInboxMessage
from notifications.models import ChatGroup
from tests.conftest import unlock_phone

pytestmark = pytest.mark.django_db


def cards_of(user, kind: str) -> list[dict]:
    return [m.card for m in DevInboxMessage.objects.filter(recipient=user).order_by("pk")
            if m.card["topic"].split(".")[0] == kind]


def press(client, committed, user, topic: str, action: str):
    message = DevInboxMessage.objects.filter(recipient=user, card__topic=topic).order_by("-pk").first()
    assert message is not None, f"no {topic} card for {user}"
    unlock_phone(client, user)  # the button is pressed on the person's own phone
    with committed():
        return client.post(f"/dev/inbox/message/{message.pk}/action/{action}/")


def test_nightly_jobs_to_cards_to_requisition_to_approval(history, connector, users, client, committed):
    with committed():
        summary = tasks.nightly()
    assert all(summary[kind]["demo"] for kind in ("demand", "credit", "expense"))
    demand_run = ModelRun.objects.get(kind="demand")
    assert demand_run.status == "done" and demand_run.metrics["series"] == SeriesForecast.objects.count() > 16

    # Restock: the buyer gets the most urgent suggestions, each saying why; the warehouse keeper does not.
    restock_cards = cards_of(users["zhang.san"], "restock")
    assert restock_cards
    card = restock_cards[0]
    suggestion = RestockSuggestion.objects.get(pk=int(card["topic"].split(".")[1]))
    assert suggestion.run == demand_run and suggestion.quantity > 0
    assert suggestion.position <= suggestion.reorder_point
    assert [a["id"] for a in card["actions"]] == ["requisition", "dismiss"]
    assert "再订货点" in card["note"] and suggestion.sku in {f["value"] for f in card["fields"]}
    assert not cards_of(users["zhao.liu"], "restock")

    # Receivables at risk: the alert carries the probability and the reasons in words.
    credit_run = ModelRun.objects.get(kind="credit")
    assert 0.5 < credit_run.metrics["holdout_auc"] <= 1
    [alert, *_] = cards_of(users["wang.wu"], "riskalert")
    risk = ReceivableRisk.objects.get(pk=int(alert["topic"].split(".")[1]))
    assert risk.probability >= 0.75 and risk.alerted_at
    why = [f["value"] for f in alert["fields"] if f["label"] == "原因"]
    assert why and all(why)
    # The sales rep sees only their own customers' invoices.
    for rep_card in cards_of(users["chen.qi"], "riskalert"):
        assert ReceivableRisk.objects.get(pk=int(rep_card["topic"].split(".")[1])).sales_rep_login == "chen.qi"

    # An unusual expense claim: scored when it arrives, its approval card flagged, the review group opened.
    with committed():
        claim = erp.create_expense_claim()
    document = ApprovalDocument.objects.get(external_id=claim.number)
    score = ExpenseScore.objects.get(document=document)
    assert score.flagged and score.category == "业务招待" and score.category_ratio > 3
    approval = DevInboxMessage.objects.get(recipient=users["wang.wu"], card__topic=document.topic).card
    flags = [f["value"] for f in approval["fields"] if f["label"] == "异常"]
    assert any(f"{score.category_ratio:.1f}" in text and "中位数" in text for text in flags)
    assert ChatGroup.objects.filter(purpose="review", subject_topic=document.topic).exists()

    # The restock card's button: a requisition in the ERP, then the normal approval card to li.si.
    response = press(client, committed, users["zhang.san"], card["topic"], "requisition")
    assert response.status_code == 200
    suggestion.refresh_from_db()
    assert suggestion.status == "requisitioned"
    requisition = PurchaseRequisition.objects.get(number=suggestion.requisition_number)
    assert requisition.requester == "zhang.san" and requisition.state == "waiting"
    [line] = requisition.lines.all()
    assert (line.sku, line.qty) == (suggestion.sku, suggestion.quantity)
    mirrored = ApprovalDocument.objects.get(external_id=requisition.number)
    li_card = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=mirrored.topic).card
    assert [a["id"] for a in li_card["actions"]] == ["approve", "reject"]
    edited = DevInboxMessage.objects.filter(recipient=users["zhang.san"], card__topic=card["topic"]).last().card
    assert requisition.number in edited["status_label"] and not edited["actions"]
    # Pressing again creates nothing more.
    press(client, committed, users["zhang.san"], card["topic"], "requisition")
    assert PurchaseRequisition.objects.filter(source_key=f"foresight-restock-{suggestion.pk}").count() == 1


def test_dismiss_is_feedback_and_the_next_run_is_incremental_and_quiet(history, connector, users, client, committed):
    with committed():
        services.run_demand(connector)
    card = cards_of(users["zhang.san"], "restock")[0]
    press(client, committed, users["zhang.san"], card["topic"], "dismiss")
    suggestion = RestockSuggestion.objects.get(pk=int(card["topic"].split(".")[1]))
    assert suggestion.status == "dismissed"
    feedback = Feedback.objects.get(kind="restock", object_id=suggestion.pk)
    assert feedback.action == "dismissed" and feedback.version == suggestion.run.version

    with committed():
        again = services.run_demand(connector)
    assert again.metrics["refitted"] == 0  # nothing in the weekly history changed
    assert not RestockSuggestion.objects.filter(sku=suggestion.sku, warehouse=suggestion.warehouse,
                                                status="open").exists()


def test_requisition_needs_the_right(history, connector, users, committed):
    with committed():
        services.run_demand(connector)
    suggestion = RestockSuggestion.objects.filter(status="open").first()
    before = PurchaseRequisition.objects.count()
    # li.si may see stock but no rule lets a purchase manager create requisitions from suggestions.
    answer = cards.handle_restock_action(suggestion.topic, users["li.si"], "requisition", "k")
    with translation.override("zh-hans"):
        assert answer == _("You may not create purchase requisitions.") == "你不能创建采购申请。"
        missing = _("This action is no longer available.")
    assert PurchaseRequisition.objects.count() == before
    # chen.qi (sales) may not even see stock: the same answer as for a missing suggestion.
    assert cards.handle_restock_action(suggestion.topic, users["chen.qi"], "dismiss", "k") == missing


def test_weekly_digest_lists_what_each_reader_may_see(history, connector, users, committed):
    with committed():
        services.run_credit(connector)
        sent = services.send_risk_digest(connector)
        again = services.send_risk_digest(connector)
    assert sent >= 1 and again == 0  # once a week per person
    [digest] = cards_of(users["wang.wu"], "riskdigest")
    assert digest["fields"] and all("%" in f["value"] for f in digest["fields"])
    for rep_digest in cards_of(users["chen.qi"], "riskdigest"):
        invoices = {f["label"].split(" · ")[0] for f in rep_digest["fields"]}
        assert set(ReceivableRisk.objects.filter(invoice__in=invoices).values_list("sales_rep_login", flat=True)) == {
            "chen.qi"}
