"""Observability: request and event ids in JSON log lines along the loop, X-Request-ID, our
Prometheus counters, /metrics refused to strangers, /readyz per dependency."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from approvals import services
from approvals.models import ApprovalDocument, Decision
from erp.intake import receive
from erp.signing import make_cloudevent, sign
from im.models import Delivery
from portal.observability import celery as observe_celery
from portal.observability import context
from portal.observability.logging import JsonFormatter, redact

from .conftest import approval_requested


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict]]]:
    """``log_lines()``: the lines the configured console handler wrote so far in the test, parsed
    (as JSON, whatever LOG_FORMAT says)."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    stream, formatter = io.StringIO(), handler.formatter
    previous = handler.setStream(stream)
    handler.setFormatter(JsonFormatter())
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        handler.setStream(previous)
        handler.setFormatter(formatter)


def post_event(client, connector, data: dict, *, request_id: str = "", webhook_id: str | None = None,
               secret: str | None = None):
    envelope = make_cloudevent("erp.approval.requested", "urn:erp:test", data)
    body = json.dumps(envelope, ensure_ascii=False).encode()
    headers = sign(secret or connector.webhook_secret, body, webhook_id=webhook_id)
    headers = {k: v for k, v in headers.items() if k != "content-type"}
    if request_id:
        headers["X-Request-ID"] = request_id
    response = client.post(f"/api/erp/{connector.slug}/events", data=body,
                           content_type="application/cloudevents+json", headers=headers)
    return envelope, response


# Real commits (transaction=True): on-commit work runs inside the request, as in production, so the
# eager tasks it queues run in the request's context.
@pytest.mark.django_db(transaction=True)
def test_one_event_is_one_event_id_from_intake_to_erp_writeback(client, connector, users, log_lines):
    # The demo ERP's own waiting document, asked for again: the writeback then really lands.
    envelope, response = post_event(client, connector, approval_requested("PR-2026-0042"), request_id="req-intake-1")
    assert response.status_code == 202 and response["X-Request-ID"] == "req-intake-1"
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    client.force_login(users["li.si"])
    decided = client.post(
        f"/approvals/{document.pk}/decide/",
        {"outcome": "approved", "idempotency_key": "obs-1", "version": document.version},
        headers={"HX-Request": "true", "X-Request-ID": "req-decide-1"},
    )
    assert decided.status_code == 200 and decided["X-Request-ID"] == "req-decide-1"
    event_id, lines = f"demo:{envelope['id']}", log_lines()
    delivery = Delivery.objects.get(topic=document.topic, dedupe_key__startswith=event_id)
    decision = Decision.objects.get(document=document)
    assert decision.writeback_status == Decision.Writeback.DONE

    def line(message: str, **fields) -> dict:
        found = [entry for entry in lines if entry["message"] == message
                 and all(entry.get(k) == v for k, v in fields.items())]
        assert len(found) == 1, (message, fields, lines)
        return found[0]

    accepted = line("erp event accepted")
    sent = line("card sent", delivery_id=delivery.pk)
    recorded = line("decision recorded", decision_id=decision.pk)
    written = line("erp writeback done", decision_id=decision.pk)
    assert {entry["event_id"] for entry in (accepted, sent, recorded, written)} == {event_id}
    assert accepted["request_id"] == sent["request_id"] == "req-intake-1"
    assert recorded["request_id"] == written["request_id"] == "req-decide-1"
    assert all({"time", "level", "logger"} <= entry.keys() for entry in (accepted, sent, recorded, written))


def test_ids_cross_into_a_worker_task_in_its_headers_and_end_with_it():
    headers: dict = {}
    with context.scope(request_id="req-9", event_id="demo:evt-9"):
        observe_celery._add_headers(headers=headers)
    assert headers == {"x_request_id": "req-9", "x_event_id": "demo:evt-9"}

    # On a worker: the task binds what its message carried, and the ids before it come back after it.
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False, headers=None, **headers))
    with context.scope(request_id="worker", event_id=""):
        observe_celery._enter_task(task_id="t1", task=task)
        assert context.current() == {"request_id": "req-9", "event_id": "demo:evt-9"}
        observe_celery._leave_task(task_id="t1")
        assert context.current() == {"request_id": "worker", "event_id": ""}


@pytest.mark.django_db
def test_request_id_is_echoed_when_sane_and_replaced_when_not(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123_x.y"})["X-Request-ID"] == "abc-123_x.y"
    for bad in ("", "two words", "x" * 200, '{"forged": 1}'):
        echoed = client.get("/healthz", headers={"X-Request-ID": bad} if bad else {})["X-Request-ID"]
        assert echoed != bad and len(echoed) == 32 and int(echoed, 16) >= 0


def test_secrets_are_redacted_from_log_lines():
    line = redact(
        'GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=S3cr3t failed; '
        'Authorization: Bearer eyJhbGciOi.abc.def {"password": "hunter2", "client_secret": "x\\"y"} whsec_AAAA xoxb-1-2'
    )
    for secret in ("S3cr3t", "eyJhbGciOi", "hunter2", 'x\\"y', "whsec_AAAA", "xoxb-1-2"):
        assert secret not in line
    assert "corpid=ww1" in line  # what is not a secret stays readable


def test_widget_embed_tokens_are_redacted_from_log_lines():
    """A widget's embed token (?e=, reusable for WIDGET_EMBED_MAX_AGE) is a key in the URL of the widget,
    its body refetches and its socket; in a log line or a login redirect's next= it would still open it."""
    from urllib.parse import quote

    from widgets.embed import make_embed_token

    token = make_embed_token(type("U", (), {"pk": 7})(), "/w/stock/SKU-201/")
    for line in (f"GET /w/stock/SKU-201/?e={token} 200", f"WSCONNECT /ws/live/?x=1&e={quote(token)}",
                 f"redirect /accounts/login/?next=/w/pending/%3Fe%3D{quote(quote(token))}"):
        redacted = redact(line)
        assert token.split(":")[0] not in redacted, redacted
        assert token.split(":")[-1] not in redacted, redacted
    assert redact("GET /w/stock/?size=e=1&type=x") == "GET /w/stock/?size=e=1&type=x"  # not every "e=" is one


def test_event_counters_move_on_accepted_duplicate_and_rejected(client, connector, committed):
    labels = {"connector": "demo", "type": "erp.approval.requested"}
    before = {o: metric("portal_erp_events_total", **labels, outcome=o) for o in ("accepted", "duplicate")}
    rejected = metric("portal_erp_events_total", connector="demo", type="unknown", outcome="rejected")
    with committed():
        post_event(client, connector, approval_requested("PR-2026-0951"), webhook_id="msg_obs_1")
        post_event(client, connector, approval_requested("PR-2026-0951"), webhook_id="msg_obs_1")
    _, refused = post_event(client, connector, approval_requested("PR-2026-0952"), secret="whsec_" + "A" * 32)
    assert refused.status_code == 401
    after = {o: metric("portal_erp_events_total", **labels, outcome=o) for o in before}
    assert after["accepted"] - before["accepted"] == 1
    assert after["duplicate"] - before["duplicate"] == 1
    # Refused at its signature: its type is not known yet, its connector is.
    assert metric("portal_erp_events_total", connector="demo", type="unknown", outcome="rejected") - rejected == 1


def test_card_and_writeback_counters_move(users, connector, committed):
    sent_before = metric("portal_im_cards_total", platform="devinbox", outcome="sent")
    with committed():
        body = json.dumps(make_cloudevent("erp.approval.requested", "urn:erp:test",
                                          approval_requested("PR-2026-0953")), ensure_ascii=False).encode()
        receive("demo", sign(connector.webhook_secret, body), body)
    assert metric("portal_im_cards_total", platform="devinbox", outcome="sent") - sent_before == 1

    done = metric("portal_erp_writebacks_total", connector="demo", outcome="done")
    latency = metric("portal_erp_writeback_latency_seconds_count", connector="demo")
    waiting = ApprovalDocument.objects.get(external_id="PR-2026-0042")  # waiting in the demo ERP too
    with committed():
        services.decide(users["li.si"], waiting.pk, "approved", idempotency_key="obs-done")
    assert Decision.objects.get(document=waiting).writeback_status == Decision.Writeback.DONE
    assert metric("portal_erp_writebacks_total", connector="demo", outcome="done") - done == 1
    assert metric("portal_erp_writeback_latency_seconds_count", connector="demo") - latency == 1

    failed = metric("portal_erp_writebacks_total", connector="demo", outcome="failed")
    dead = metric("portal_dead_letters_total", kind="writeback")
    unknown = ApprovalDocument.objects.get(external_id="PR-2026-0953")  # the demo ERP has no such document
    with committed():
        services.decide(users["li.si"], unknown.pk, "approved", idempotency_key="obs-failed")
    assert Decision.objects.get(document=unknown).writeback_status == Decision.Writeback.FAILED
    assert metric("portal_erp_writebacks_total", connector="demo", outcome="failed") - failed == 1
    assert metric("portal_dead_letters_total", kind="writeback") - dead == 1


@pytest.mark.django_db
def test_metrics_are_refused_without_token_or_allowed_address(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert client.get("/metrics").status_code == 403  # nothing configured: nobody

    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200
    body = scraped.content.decode()
    assert "portal_erp_events_total" in body and "django_http_requests_total_by_method_total" in body

    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["10.0.0.0/8", "127.0.0.1"]
    assert client.get("/metrics").status_code == 200  # the test client connects from 127.0.0.1
    # Through a proxy every request comes from the proxy's address: the address rule does not apply.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_readyz_checks_each_dependency_and_names_the_one_down(client, settings):
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    checks = ready.json()["checks"]
    assert {"database", "channel_layer"} <= checks.keys()
    assert all(check["ok"] and check["ms"] < 2000 for check in checks.values())

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL = False, "redis://127.0.0.1:1/0"
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["failed"] == ["celery_broker", "redis"]
    assert down.json()["checks"]["database"]["ok"] and down.json()["checks"]["redis"]["error"]


@pytest.mark.services
def test_readyz_round_trips_the_redis_channel_layer_and_broker(client, db, redis_url, settings):
    settings.REDIS_URL = settings.CELERY_BROKER_URL = redis_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [redis_url], "prefix": "readyz-test"}}}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert set(ready.json()["checks"]) == {"database", "channel_layer", "redis", "celery_broker"}

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json()["failed"] == ["channel_layer"]


# Channels closes stale database connections around each message; a connection another test left open
# on the same worker thread must be checkable, so the test may touch the database.
@pytest.mark.django_db
async def test_websocket_connections_are_counted_and_carry_a_request_id():
    from channels.generic.websocket import AsyncJsonWebsocketConsumer
    from channels.testing import WebsocketCommunicator

    from portal.observability.middleware import WebsocketObservability

    class Echo(AsyncJsonWebsocketConsumer):
        async def receive_json(self, content, **kwargs):
            await self.send_json(context.current())

    before = metric("portal_websocket_connections")
    app = WebsocketObservability(Echo.as_asgi())
    communicator = WebsocketCommunicator(app, "/ws/live/", headers=[(b"x-request-id", b"ws-req-1")])
    connected, _ = await communicator.connect()
    assert connected and metric("portal_websocket_connections") - before == 1
    await communicator.send_json_to({})
    assert await communicator.receive_json_from() == {"request_id": "ws-req-1", "event_id": ""}
    await communicator.disconnect()
    assert metric("portal_websocket_connections") == before
