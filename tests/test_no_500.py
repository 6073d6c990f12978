"""Hostile or unlucky requests get a clear 4xx or the right page, never a 500; pages and API answers
that carry personal or business data are never stored by a browser or a proxy."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import ApprovalDocument

pytestmark = pytest.mark.django_db

DEEP = ("[" * 50_000 + "]" * 50_000).encode()
DEEP_OBJECT = ('{"text": ' + "[" * 50_000 + "]" * 50_000 + "}").encode()


@pytest.fixture
def raising_client() -> Client:
    """A client that answers a server error with a 500 response instead of raising it."""
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("path", [
    "/accounts/wecom/login/", "/accounts/feishu/login/", "/accounts/dingtalk/login/", "/accounts/slack/login/",
    "/accounts/wecom/login/callback/", "/accounts/3rdparty/login/cancelled/", "/accounts/3rdparty/login/error/",
    "/accounts/3rdparty/signup/", "/accounts/3rdparty/",
])
def test_im_sign_in_pages_answer_without_a_server_error(raising_client, path):
    for method in ("get", "post"):
        response = getattr(raising_client, method)(path)
        assert response.status_code < 500, (method, path, response.status_code)


def test_an_unconfigured_provider_is_a_404_and_a_cancelled_sign_in_goes_back_to_the_login_page(raising_client):
    assert raising_client.get("/accounts/wecom/login/").status_code == 404
    cancelled = raising_client.get("/accounts/3rdparty/login/cancelled/")
    assert cancelled.status_code in (200, 302)
    if cancelled.status_code == 302:
        assert cancelled["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "sNaN", "1e999999", "abc"])
def test_bulk_approve_refuses_amounts_that_are_not_numbers(raising_client, users, value):
    raising_client.force_login(users["li.si"])
    response = raising_client.get("/notifications/bulk-approve/", {"max_amount": value})
    assert response.status_code == 400, response.status_code


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT])
def test_deeply_nested_json_is_a_400_on_every_api_that_reads_json(raising_client, users, body):
    raising_client.force_login(users["li.si"])
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    ask = raising_client.post("/api/bot/ask", {"text": "approve PR-2026-0042"}, content_type="application/json")
    exchange = ask.json()["answer"]["exchange"]
    for path in ("/api/bot/ask", f"/api/approvals/{document.pk}/decision",
                 f"/api/bot/exchanges/{exchange}/actions/confirm"):
        response = raising_client.post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert response["Content-Type"].startswith("application/problem+json"), path
    assert not document.decisions.exists()


def test_pages_and_api_answers_are_never_stored(client, users):
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    anonymous = [client.get("/accounts/login/"), client.get("/api/approvals/pending/"), client.get("/nope/")]
    client.force_login(users["li.si"])
    signed_in = [
        client.get("/approvals/"), client.get(f"/approvals/{document.pk}/"),
        client.get(f"/approvals/{document.pk}/panel/"),
        client.get(f"/api/approvals/{document.pk}/"), client.get("/api/approvals/pending/"),
        client.get(f"/w/approval/{document.pk}/"), client.get("/w/pending/"),
        client.get("/notifications/bulk-approve/"),
        client.post("/api/bot/ask", {"text": "项目A的应收"}, content_type="application/json"),
        client.get("/api/approvals/999999/"),
    ]
    for response in anonymous + signed_in:
        cache_control = response.get("Cache-Control", "")
        assert "no-store" in cache_control and "private" in cache_control, (response.status_code, cache_control)
    # Static files carry no personal data and keep their long-lived caching.
    static = client.get("/static/portal/live.js")
    assert static.status_code == 200 and "no-store" not in static.get("Cache-Control", "")
