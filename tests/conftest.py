"""Shared fixtures. Service tests (Postgres, Redis, a real Celery worker) skip when the service is
absent, unless REQUIRE_SERVICES=1 (CI), where they fail instead."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.conf import settings as django_settings

from .live_server import CHROMIUM, launch_chromium

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def service_missing(what: str) -> None:
    """Skip, or fail under REQUIRE_SERVICES=1, because ``what`` is not available."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {what} is not available")
    pytest.skip(f"{what} is not available")


def unlock_phone(client, *owners, password: str = "demo") -> None:  # noqa: S107 - the demo users' password
    """Sign ``client`` in to each owner's dev inbox phone, as a person does once per phone."""
    for owner in owners:
        response = client.post(f"/dev/inbox/phone/{owner.pk}/unlock/", {"password": password})
        assert response.status_code == 302, response


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable[[], AbstractContextManager]:
    """``with committed(): …`` runs the on-commit side effects (tasks, live publish) at the end,
    as a real commit would, inside a test transaction."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def demo(db, committed):
    """The demo world: demo ERP data, linked users, waiting documents announced and delivered."""
    from portal.demo import setup_demo

    with committed():
        return setup_demo()


@pytest.fixture
def connector(demo):
    from erp.models import Connector

    return Connector.objects.get(slug="demo")


@pytest.fixture
def users(demo) -> dict:
    from django.contrib.auth import get_user_model

    return {u.username: u for u in get_user_model().objects.all()}


@pytest.fixture
def send_event(client, connector, committed):
    """POST a signed CloudEvent to the intake, the way an ERP does; returns the response."""
    from erp.signing import make_cloudevent, sign

    def send(event_type: str, data: dict, *, webhook_id: str | None = None, slug: str = "demo"):
        body = json.dumps(make_cloudevent(event_type, "urn:erp:test", data), ensure_ascii=False).encode()
        headers = sign(connector.webhook_secret, body, webhook_id=webhook_id)
        with committed():
            return client.post(
                f"/api/erp/{slug}/events",
                data=body,
                content_type="application/cloudevents+json",
                headers={k: v for k, v in headers.items() if k != "content-type"},
            )

    return send


def approval_requested(doc_id: str = "PR-2026-0900", approvers: list[str] | None = None, **document) -> dict:
    data = {
        "document": {
            "id": doc_id,
            "kind": "purchase_requisition",
            "title": "紧急采购: 伺服电机",
            "amount": "12800.00",
            "currency": "CNY",
            "requester": "zhang.san",
            "project": "项目A",
            "lines": [{"sku": "SKU-123", "name": "伺服电机", "qty": "4", "unit_price": "3200.00"}],
        },
        "approvers": approvers if approvers is not None else ["li.si"],
    }
    data["document"].update(document)
    return data


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or django_settings.REDIS_URL
    if not url:
        service_missing("Redis (REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        service_missing(f"Redis at {url}")
    return url


@pytest.fixture
def postgres(db) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (DATABASE_URL=postgres://…)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian Chromium through Playwright, one per test module (never a downloaded browser)."""
    if not CHROMIUM.exists():
        service_missing(f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("Playwright (pip install playwright; never `playwright install` here)")
    # Playwright's sync API keeps an asyncio loop set on this thread, so Django's async-safety
    # check would refuse every ORM call the test (and pytest-django's flush) makes meanwhile. The
    # calls are really synchronous: allow them while the browser is up (the server keeps the check).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
