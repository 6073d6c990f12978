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


@pytest.mark.parametrize("language,text", [("zh-hans", "这里没有您可以查看的内容。"),
                                           ("en", "There is nothing here that you may see.")])
def test_a_page_that_is_not_yours_or_missing_is_one_translated_404_page(users, language, text):
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    browser.force_login(users["chen.qi"])  # sales: may not see PR-2026-0042
    not_yours = browser.get(ApprovalDocument.objects.get(external_id="PR-2026-0042").get_absolute_url())
    missing = browser.get("/approvals/999999/")
    nowhere = browser.get("/no/such/page/")
    for response in (not_yours, missing, nowhere):
        assert response.status_code == 404
        page = response.content.decode()
        assert f'lang="{language}"' in page and text in page
        assert "伺服电机" not in page and "PR-2026-0042" not in page


def test_an_unreadable_page_request_is_a_translated_400_page(users):
    browser = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    browser.force_login(users["li.si"])
    # More fields than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django refuses the request before any view.
    response = browser.post("/notifications/bulk-approve/", {f"f{i}": "1" for i in range(20000)})
    assert response.status_code == 400
    assert "无法读取此请求" in response.content.decode()


@pytest.mark.parametrize("language,text", [("zh-hans", "密码错误次数过多"), ("en", "too many wrong passwords")])
def test_a_locked_out_sign_in_is_a_page_in_the_readers_language(db, settings, language, text):
    from django.contrib.auth import get_user_model

    settings.AXES_FAILURE_LIMIT = 2
    get_user_model().objects.create_user("hana", password="correct-horse-6")
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    answers = [browser.post("/accounts/login/", {"username": "hana", "password": "nope"}) for _ in range(2)]
    locked = answers[-1]
    assert locked.status_code == 429
    assert locked["Content-Type"] == "text/html; charset=utf-8"
    page = locked.content.decode()
    assert f'lang="{language}"' in page and text in page


@pytest.mark.parametrize("answer", ["<html>502 Bad Gateway</html>", "[]", '"sub"'])
def test_a_homeservers_unreadable_answer_is_a_401_not_a_500(client, db, settings, monkeypatch, answer):
    import httpx

    settings.MATRIX_HOMESERVER_URL = "https://matrix.example"
    monkeypatch.setattr(httpx, "get", lambda *args, **kwargs: httpx.Response(200, text=answer))
    response = client.post("/w/matrix/session", {"access_token": "t", "matrix_server_name": "matrix.example",
                                                 "path": "/w/stock/SKU-123/"}, content_type="application/json")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
