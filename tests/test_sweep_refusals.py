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


def test_signing_in_keeps_the_browsers_language_when_the_profile_sets_none(users):
    from sso.models import Profile

    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert 'lang="en"' in browser.get("/accounts/login/").content.decode()
    browser.force_login(users["li.si"])
    page = browser.get("/approvals/").content.decode()
    assert 'lang="en"' in page and "待我审批" not in page
    # A language chosen in the profile still wins over the browser's.
    Profile.objects.update_or_create(user=users["li.si"], defaults={"language": "zh-hans"})
    assert 'lang="zh-hans"' in browser.get("/approvals/").content.decode()
    # No Accept-Language at all: the portal's default, Simplified Chinese.
    plain = Client()
    plain.force_login(users["wang.wu"])
    assert 'lang="zh-hans"' in plain.get("/approvals/").content.decode()
