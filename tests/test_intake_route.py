"""The intake's lean route under Daphne (erp/asgi.py), with a broker: the same answers as the Django
view for every refusal, duplicates, group commit under concurrency, a broker that is down, a database
that is down, and everything else left to Django. Runs on SQLite and, with DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from django.db import OperationalError, connection

from erp import asgi as route_module
from erp import intake
from erp.asgi import IntakeRoute
from erp.models import Connector, InboundEvent
from erp.requeue import claim_received_events
from erp.signing import make_cloudevent, sign
from portal.tasks import StaleWindow

from .conftest import approval_requested

pytestmark = pytest.mark.django_db(transaction=True)  # the route stores on a thread of its own


class Fallback:
    """Django's place: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


@pytest.fixture
def broker(settings, monkeypatch) -> list[list[int]]:
    """A broker is configured (not the in-process default); what the workers were told, in order. Every
    ring of the doorbell is answered here (what the intake tells per group); tests/test_doorbell.py
    checks how the doorbell spares the tasks a waiting one makes needless."""
    from erp import doorbell, tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(doorbell, "ring", lambda: True)
    told: list[list[int]] = []
    monkeypatch.setattr(tasks.handle_events, "delay", lambda ids: told.append(list(ids)))
    return told


@pytest.fixture
def route(broker):
    fallback = Fallback()
    app = IntakeRoute(fallback)
    app.fallback_paths = fallback.paths
    yield app
    app.store_thread.shutdown(wait=True)
    app.notify_thread.shutdown(wait=True)


@pytest.fixture
def acme() -> Connector:
    return Connector.objects.create(slug="acme", name="Acme", kind="demo")


def event(connector: Connector, data: dict | None = None, *, webhook_id: str | None = None,
          event_type: str = "erp.approval.requested") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(make_cloudevent(event_type, "urn:erp:test", data or approval_requested()),
                      ensure_ascii=False).encode()
    return body, sign(connector.webhook_secret, body, webhook_id=webhook_id)


async def post(app, body: bytes, headers: dict[str, str], *, path: str = "/api/erp/acme/events",
               host: str = "127.0.0.1", method: str = "POST") -> tuple[int, dict[bytes, bytes], bytes]:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"host", host.encode()), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": raw, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    # The body in two chunks, as a proxy may send it.
    inbox = [{"type": "http.request", "body": body[:10], "more_body": True},
             {"type": "http.request", "body": body[10:], "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return inbox.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def post_one(app, body: bytes, headers: dict[str, str], **kwargs) -> tuple[int, dict[bytes, bytes], bytes]:
    return asyncio.run(post(app, body, headers, **kwargs))


def problem(status: int, answer: tuple[int, dict[bytes, bytes], bytes]) -> dict:
    got, headers, body = answer
    assert got == status, body
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"cache-control"] == b"private, no-store" and headers[b"x-request-id"]
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"] == "about:blank" and problem["title"]
    return problem


def test_an_event_is_stored_received_answered_202_and_the_workers_are_told(route, acme, broker):
    body, headers = event(acme, webhook_id="msg_one")
    status, answer_headers, answer = post_one(route, body, {**headers, "X-Request-ID": "req-12345678"})
    route.notify_thread.shutdown(wait=True)  # the workers are told after the answer
    stored = InboundEvent.objects.get()
    assert status == 202 and answer_headers[b"content-type"] == b"application/json"
    assert answer_headers[b"x-request-id"] == b"req-12345678"
    assert json.loads(answer) == {"id": stored.event_id, "duplicate": False}
    assert (stored.connector, stored.webhook_id, stored.status) == (acme, "msg_one", InboundEvent.Status.RECEIVED)
    assert stored.data == approval_requested() and stored.type == "erp.approval.requested"
    assert stored.received_at is not None and stored.occurred_at is not None and stored.attempts == 0
    assert broker == [[stored.pk]]
    assert route.fallback_paths == []


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda h: h.pop("webhook-signature"), id="missing-signature"),
    pytest.param(lambda h: h.update({"webhook-signature": "v1,AAAA"}), id="wrong-signature"),
    pytest.param(lambda h: h.update({"webhook-id": "msg_other"}), id="id-not-signed"),
    pytest.param(lambda h: h.update({"webhook-timestamp": str(int(dt.datetime(2020, 1, 1).timestamp()))}),
                 id="old-timestamp"),
])
def test_a_bad_signature_is_401_and_stores_nothing(route, acme, broker, mangle):
    body, headers = event(acme)
    mangle(headers)
    assert problem(401, post_one(route, body, headers))["title"] == "Invalid signature"
    assert not InboundEvent.objects.exists() and broker == []


def test_a_secret_changed_in_admin_is_used_at_once(route, acme):
    old = Connector(webhook_secret=acme.webhook_secret)
    assert post_one(route, *event(old))[0] == 202  # the connector is now kept by the process
    acme.webhook_secret = "whsec_" + "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQ="
    acme.save()
    problem(401, post_one(route, *event(old)))
    assert post_one(route, *event(acme))[0] == 202


def test_data_failing_its_schema_is_400_with_the_place_named(route, acme, broker):
    body, headers = event(acme, approval_requested(amount="\ufeff12"))
    found = problem(400, post_one(route, body, headers))
    assert found["title"] == "Invalid event data" and found["detail"].startswith("data.document.amount: ")
    assert not InboundEvent.objects.exists() and broker == []


@pytest.mark.parametrize("body", [b"{not json", json.dumps({"specversion": "1.0"}).encode(),
                                  json.dumps(["a list"]).encode()], ids=["malformed", "not-cloudevent", "list"])
def test_a_bad_cloudevent_is_400(route, acme, body):
    problem(400, post_one(route, body, sign(acme.webhook_secret, body)))
    assert not InboundEvent.objects.exists()


def test_an_unsupported_type_is_400(route, acme):
    body, headers = event(acme, {"x": 1}, event_type="erp.nothing.happened")
    assert problem(400, post_one(route, body, headers))["title"] == "Unsupported event type"


def test_the_same_webhook_id_again_is_202_duplicate_and_changes_nothing(route, acme, broker):
    first = post_one(route, *event(acme, webhook_id="msg_same"))
    again = post_one(route, *event(acme, approval_requested(title="changed"), webhook_id="msg_same"))
    assert (first[0], again[0]) == (202, 202)
    assert json.loads(first[2])["duplicate"] is False and json.loads(again[2])["duplicate"] is True
    assert InboundEvent.objects.get().data["document"]["title"] == "紧急采购: 伺服电机"
    route.notify_thread.shutdown(wait=True)
    assert len(broker) == 1  # the duplicate told nobody


def test_concurrent_requests_are_stored_in_groups_each_answered_for_itself(route, acme, broker, monkeypatch,
                                                                          caplog):
    """Group commit: requests that arrive while a store runs are stored together by the next one, with
    one statement; a webhook-id twice in one group is stored once, the other answered duplicate."""
    groups: list[int] = []
    store_many = intake.store_many

    def counting(rows):
        groups.append(len(rows))
        return store_many(rows)

    monkeypatch.setattr(route_module, "store_many", counting)
    events = [event(acme, approval_requested(doc_id=f"PR-G-{i}"), webhook_id=f"msg_g{i}") for i in range(30)]
    events.append(event(acme, approval_requested(doc_id="PR-G-0"), webhook_id="msg_g0"))  # a redelivery

    async def all_at_once():
        return await asyncio.gather(*(post(route, body, headers) for body, headers in events))

    answers = asyncio.run(all_at_once())
    route.notify_thread.shutdown(wait=True)
    assert [status for status, _, _ in answers] == [202] * 31
    duplicates = [json.loads(body)["duplicate"] for _, _, body in answers]
    assert duplicates.count(True) == 1 and duplicates.count(False) == 30
    assert InboundEvent.objects.count() == 30
    assert sum(groups) == 31 and len(groups) < 31 and max(groups) > 1
    told = sorted(pk for ids in broker for pk in ids)
    assert told == sorted(InboundEvent.objects.values_list("pk", flat=True))
    assert len(broker) < 30  # once per group, not per event
    notices = [r for r in caplog.records if r.getMessage() == "erp events accepted"]
    assert len(notices) == len(broker)  # one log line per group, naming its events
    assert sorted(key for r in notices for key in r.event_ids) == sorted(
        f"acme:{e.event_id}" for e in InboundEvent.objects.all())


def test_with_the_broker_down_the_event_is_stored_answered_and_the_safety_net_finds_it(route, acme, monkeypatch):
    from erp import tasks

    def down(ids):
        raise OSError("Connection refused")

    monkeypatch.setattr(tasks.handle_events, "delay", down)
    status, _, answer = post_one(route, *event(acme))
    route.notify_thread.shutdown(wait=True)
    assert status == 202 and json.loads(answer)["duplicate"] is False
    stored = InboundEvent.objects.get()
    assert stored.status == InboundEvent.Status.RECEIVED
    later = stored.received_at + dt.timedelta(minutes=5)
    window = StaleWindow(now=later, stale=later, retry_overdue=later, lease=later)
    assert claim_received_events(window) == [[stored.pk]]


def test_with_the_database_down_the_answer_is_503_retry_after(route, acme, settings, monkeypatch):
    post_one(route, *event(acme))  # the connector is kept: the store is what fails next

    def unreachable(rows):
        raise OperationalError("connection refused")

    monkeypatch.setattr(route_module, "store_many", unreachable)
    status, headers, _ = answer = post_one(route, *event(acme))
    problem(503, answer)
    assert headers[b"retry-after"] == str(settings.UNAVAILABLE_RETRY_AFTER_SECONDS).encode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite stores a NUL in text as sent")
def test_an_event_the_database_refuses_is_400_and_its_group_is_stored_without_it(route, acme):
    good = [event(acme, approval_requested(doc_id=f"PR-N-{i}")) for i in range(5)]
    bad = event(acme, approval_requested(title="a\u0000b"))

    async def together():
        return await asyncio.gather(*(post(route, body, headers) for body, headers in [*good, bad]))

    *goods, refused = asyncio.run(together())
    assert [status for status, _, _ in goods] == [202] * 5
    assert problem(400, refused)["title"] == "Invalid event data"
    assert InboundEvent.objects.count() == 5


def test_everything_else_goes_to_django(route, acme, settings):
    body, headers = event(acme)
    assert post_one(route, body, headers, path="/api/erp/nobody/events")[0] == 299  # unknown connector
    assert post_one(route, body, headers, method="PUT")[0] == 299
    assert post_one(route, body, headers, host="evil.example")[0] == 299  # Django answers 400 for it
    assert post_one(route, body, headers, path="/healthz")[0] == 299
    acme.enabled = False
    acme.save()  # clears the connectors this process keeps
    assert post_one(route, body, headers)[0] == 299  # disabled
    acme.enabled = True
    acme.save()
    settings.CELERY_TASK_ALWAYS_EAGER = True  # in-process: handled inside the request, by Django
    assert post_one(route, body, headers)[0] == 299
    assert len(route.fallback_paths) == 6 and not InboundEvent.objects.exists()


def test_the_asgi_application_routes_http_through_the_intake_route():
    from portal.asgi import application

    assert isinstance(application.application_mapping["http"], IntakeRoute)
