"""The embedded default (SQLite, a file) answers racing decisions as PostgreSQL does: one wins, the
others get 409 "already approved by …" (or the first decision again for the same idempotency key),
never 503 "database cannot be reached" or "database is locked"."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from approvals.models import ApprovalDocument, Decision
from tests.concurrency import run_together as run_calls_together

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENT = "PR-2026-0042"


def run_together(*calls):
    return run_calls_together(*calls, join_timeout=60)  # SQLite serialises writers: give them longer


@pytest.fixture
def world(transactional_db):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    if connection.vendor != "sqlite":
        pytest.skip("the embedded default's behaviour (tests/test_services.py covers PostgreSQL)")
    assert connection.settings_dict["NAME"] != ":memory:" and "mode=memory" not in str(connection.settings_dict["NAME"])
    setup_demo()
    users = {u.username: u for u in get_user_model().objects.all()}
    return users, ApprovalDocument.objects.get(external_id=DOCUMENT)


def _api_decision(user, document: ApprovalDocument, key: str, outcome: str = "approved"):
    def call():
        client = Client()
        client.force_login(user)
        return client.post(f"/api/approvals/{document.pk}/decision",
                           json.dumps({"outcome": outcome, "idempotency_key": key}),
                           content_type="application/json")
    return call


def test_sqlite_is_in_wal_mode_with_immediate_transactions(world):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0].lower() == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 5000
    assert connection.settings_dict["OPTIONS"].get("transaction_mode") == "IMMEDIATE"


def test_eight_simultaneous_decisions_on_sqlite_give_one_201_and_seven_409(world):
    users, document = world
    approver = users["li.si"]
    responses = run_together(*[
        _api_decision(approver, document, f"race-{i}", "approved" if i % 2 else "rejected") for i in range(8)])
    statuses = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    assert statuses == [201] + [409] * 7, [(getattr(r, "status_code", r), getattr(r, "content", b"")[:200])
                                          for r in responses]
    assert Decision.objects.filter(document=document).count() == 1
    refused = next(r for r in responses if r.status_code == 409).json()
    assert "李四" in json.dumps(refused, ensure_ascii=False)  # "already approved/rejected by 李四 …"


def test_the_same_key_twice_at_once_on_sqlite_is_201_then_200(world):
    users, document = world
    approver = users["li.si"]
    responses = run_together(*[_api_decision(approver, document, "double-tap")] * 2)
    statuses = sorted(getattr(r, "status_code", repr(r)) for r in responses)
    assert statuses == [200, 201], [(getattr(r, "status_code", r), getattr(r, "content", b"")[:200])
                                    for r in responses]
    assert [r.json()["status"] for r in responses] == ["approved", "approved"]  # both: the one decision
    assert Decision.objects.filter(document=document).count() == 1


def test_a_burst_of_events_cards_decisions_and_pages_never_locks_sqlite(world):
    """A demo walk's load at once: new requests arriving through the intake (each sends its cards
    in-process to the dev inbox), decisions, and pages being read, on one SQLite file."""
    from erp.models import Connector
    from erp.signing import make_cloudevent, sign
    from im.models import Delivery

    from .conftest import approval_requested

    users, document = world
    connector = Connector.objects.get(slug="demo")

    def intake(number: str):
        def call():
            body = json.dumps(make_cloudevent("erp.approval.requested", "urn:erp:test",
                                              approval_requested(number, ["li.si", "wang.wu"])),
                              ensure_ascii=False).encode()
            headers = sign(connector.webhook_secret, body)
            return Client().post("/api/erp/demo/events", data=body, content_type="application/cloudevents+json",
                                 headers={k: v for k, v in headers.items() if k != "content-type"})
        return call

    def page(user, path: str):
        def call():
            client = Client()
            client.force_login(user)
            return client.get(path)
        return call

    calls = [intake(f"PR-2026-09{i:02d}") for i in range(6)]
    calls += [_api_decision(users["li.si"], document, "walk-approve")]
    calls += [page(users["li.si"], "/approvals/"), page(users["zhang.san"], f"/approvals/{document.pk}/"),
              page(users["li.si"], "/w/pending/")]
    responses = run_together(*calls)
    statuses = [getattr(r, "status_code", repr(r)) for r in responses]
    assert statuses == [202] * 6 + [201] + [200] * 3, statuses
    new = Delivery.objects.filter(topic__in=[f"approval.{d.pk}" for d in ApprovalDocument.objects.filter(
        external_id__startswith="PR-2026-09")])
    assert new.count() >= 6 and set(new.values_list("status", flat=True)) == {Delivery.Status.SENT}
