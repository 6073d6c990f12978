"""Hardening: sign-in lockout, API rate limits, JSON-only API, `check --deploy` in production shape."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from rest_framework.authtoken.models import Token

from trust.models import AuditEntry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_throttle():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def test_check_deploy_is_clean_in_production_settings(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "HTTPS": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DEV_INBOX_ENABLED": "0",
        "DEMO_ERP_ENABLED": "0",
    }
    run = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no issues" in run.stdout


def test_password_sign_in_is_locked_after_repeated_failures(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_user("dora", password="correct-horse-9")
    answers = [client.post("/accounts/login/", {"username": "dora", "password": "nope"}).status_code for _ in range(3)]
    assert answers == [200, 200, 429]  # the form again with its error, then locked at the limit
    locked = client.post("/accounts/login/", {"username": "dora", "password": "correct-horse-9"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not locked (username + address).
    get_user_model().objects.create_user("eve", password="correct-horse-8")
    assert client.post("/accounts/login/", {"username": "eve", "password": "correct-horse-8"}).status_code == 302
    assert AuditEntry.objects.filter(action="auth.sign_in_failed").count() >= 3


def test_success_resets_the_failure_count(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_user("finn", password="correct-horse-7")
    for _ in range(2):
        client.post("/accounts/login/", {"username": "finn", "password": "nope"})
    assert client.post("/accounts/login/", {"username": "finn", "password": "correct-horse-7"}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "finn", "password": "nope"})
    assert client.post("/accounts/login/", {"username": "finn", "password": "correct-horse-7"}).status_code == 302


def test_api_rate_limit_per_token(client, db, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"credential": "3/min"}}
    user = get_user_model().objects.create_user("gus")
    first = Token.objects.create(user=user)
    answers = [
        client.get("/api/approvals/pending/", headers={"Authorization": f"Token {first.key}"}).status_code
        for _ in range(4)
    ]
    assert answers == [200, 200, 200, 429]
    limited = client.get("/api/approvals/pending/", headers={"Authorization": f"Token {first.key}"})
    assert limited["Content-Type"] == "application/problem+json"
    assert "Retry-After" in limited
    # A signed-in session of the same user has a bucket of its own.
    client.force_login(user)
    assert client.get("/api/approvals/pending/").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "outcome=approved&idempotency_key=k1"),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"),
        ("text/plain", '{"outcome": "approved"}'),
        ("application/xml", "<outcome>approved</outcome>"),
    ],
)
def test_api_accepts_json_only(client, db, content_type, body):
    user = get_user_model().objects.create_user("hal")
    client.force_login(user)
    for url in ("/api/approvals/1/decision", "/api/bot/ask"):
        response = client.post(url, data=body, content_type=content_type)
        assert response.status_code == 415, (url, response.status_code)
        assert response["Content-Type"] == "application/problem+json"


def test_unknown_api_urls_answer_problem_json_and_pages_keep_the_html_404(client, db, settings):
    settings.DEBUG = False  # the 404 handler runs only when DEBUG is off, as in production
    response = client.get("/api/approvals/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not found", "status": 404,
                               "detail": "no API endpoint at /api/approvals/no-such-thing"}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_an_api_crash_answers_problem_json_without_the_traceback(db, settings, monkeypatch):
    from django.test import Client

    from approvals import api as approvals_api

    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    settings.DEBUG = False
    monkeypatch.setattr(approvals_api.PendingList, "get", crash)
    user = get_user_model().objects.create_user("crash")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get("/api/approvals/pending/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert "secret internals" not in response.content.decode()
