"""The walking skeleton's loop at HTTP level: event in → card → link → decide → writeback → cards edited."""

from __future__ import annotations

import re

import pytest

from approvals.models import ApprovalDocument, Decision
from erp.connectors.demo.models import AppliedDecision, PurchaseRequisition
from im.models import Delivery
from im.platforms.devinbox.models import DevInboxMessage

from .conftest import approval_requested, unlock_phone

pytestmark = pytest.mark.django_db


def card_link(message: DevInboxMessage) -> str:
    return re.sub(r"^https?://[^/]+", "", message.card["link"])


def test_issue_example_event_reaches_the_approver_as_a_card(send_event, users):
    response = send_event("erp.approval.requested", approval_requested("PR-2026-0901"))
    assert response.status_code == 202, response.content
    document = ApprovalDocument.objects.get(external_id="PR-2026-0901")
    assert document.amount == 12800 and document.lines.get().sku == "SKU-123"
    delivery = Delivery.objects.get(topic=document.topic)
    assert delivery.recipient == users["li.si"] and delivery.status == Delivery.Status.SENT
    card = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=document.topic).card
    assert "伺服电机" in card["title"]
    assert [a["id"] for a in card["actions"]] == ["approve", "reject"]
    assert card["amount"] == "¥12,800.00"  # one format: Babel, the recipient's locale (zh-Hans)


def test_tap_link_approve_writes_back_once_and_edits_the_card(client, demo, users, committed):
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    message = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=document.topic)

    unlock_phone(client, users["li.si"])  # li.si's own phone: the tap is theirs
    page = client.get(card_link(message), follow=True)
    assert page.status_code == 200
    assert page.context["user"] == users["li.si"]
    assert "紧急采购: 伺服电机" in page.content.decode()
    key = page.context["idempotency_key"]

    form = {"outcome": "approved", "comment": "同意", "idempotency_key": key, "version": document.version}
    with committed():
        first = client.post(f"/approvals/{document.pk}/decide/", form, headers={"HX-Request": "true"})
    with committed():
        again = client.post(f"/approvals/{document.pk}/decide/", form, headers={"HX-Request": "true"})
    assert first.status_code == again.status_code == 200

    decision = Decision.objects.get(document=document)
    assert decision.writeback_status == Decision.Writeback.DONE
    assert PurchaseRequisition.objects.get(number="PR-2026-0042").state == "approved"
    assert AppliedDecision.objects.filter(document_number="PR-2026-0042").count() == 1
    message.refresh_from_db()
    assert message.revision > 1 and message.card["actions"] == []
    assert message.card["status"] == "approved"
