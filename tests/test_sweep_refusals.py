"""Findings of the outside security sweep: a refusal reads exactly like "not found", in every language."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import ApprovalDocument

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_someone_elses_bot_answer_is_the_same_404_as_a_missing_document(client, users, language):
    client.force_login(users["li.si"])
    exchange = client.post("/api/bot/ask", {"text": "approve PR-2026-0044"},
                           content_type="application/json").json()["answer"]["exchange"]
    other = Client(HTTP_ACCEPT_LANGUAGE=language)
    other.force_login(users["wang.wu"])
    missing_document = other.get(f"/api/approvals/{ApprovalDocument.objects.order_by('-pk')[0].pk + 1000}/")
    assert missing_document.status_code == 404
    for refused in (other.post(f"/api/bot/exchanges/{exchange}/actions/confirm"),
                    other.post(f"/api/bot/exchanges/{exchange + 1000}/actions/confirm"),
                    other.post(f"/api/bot/exchanges/{exchange}/actions/nonsense")):
        assert refused.status_code == 404
        assert refused["Content-Type"] == missing_document["Content-Type"]
        assert refused.json() == missing_document.json()
    assert ApprovalDocument.objects.get(external_id="PR-2026-0044").status == "pending"
