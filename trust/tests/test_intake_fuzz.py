"""Fuzzing the signed event intake (Hypothesis): malformed, oversized, wrongly encoded and replayed
payloads always get a clear 4xx (problem+json) and never write anything, not even part of an event."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import uuid

import pytest
from django.apps import apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erp.models import Connector
from erp.signing import make_cloudevent
from tests.conftest import approval_requested

URL = "/api/erp/fuzz/events"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
WRITTEN_BY_INTAKE = ("erp", "approvals", "inventory", "finance", "im", "devinbox", "notifications", "trust")


def row_counts() -> dict[str, int]:
    """Rows of every table an accepted event could touch (the audit chain included)."""
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in WRITTEN_BY_INTAKE and not m._meta.proxy
    }


def raw_sign(secret: str, body: bytes, *, webhook_id: str | None = None, at: dt.datetime | None = None) -> dict:
    """Standard Webhooks signature over the exact bytes (erp.signing.sign needs UTF-8 text)."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int((at or dt.datetime.now(dt.UTC)).timestamp()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


@pytest.fixture
def fuzz_connector(db) -> Connector:
    return Connector.objects.create(slug="fuzz", name="Fuzz ERP", kind="demo")


def post(client, body: bytes, headers: dict, content_type: str = "application/cloudevents+json"):
    return client.post(URL, data=body, content_type=content_type, headers=headers)


def assert_refused(response, before: dict[str, int], *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == response.status_code
    assert row_counts() == before, "a refused event wrote something"


def valid_envelope() -> dict:
    return make_cloudevent("erp.approval.requested", "urn:erp:fuzz", approval_requested("PR-FUZZ-1"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_envelopes(draw) -> dict:
    """A valid approval event with one part replaced by arbitrary JSON, or removed."""
    envelope = valid_envelope()
    paths = [p for p in _paths(envelope) if p]
    path = draw(st.sampled_from(paths))
    parent = envelope
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return envelope


@given(body=st.binary(max_size=3000), headers=st.dictionaries(
    st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), st.text(max_size=60)))
@FUZZ
def test_unsigned_or_badly_signed_bytes_are_401(client, fuzz_connector, body, headers):
    before = row_counts()
    assert_refused(post(client, body, headers), before, 401)


@given(body=st.binary(max_size=3000))
@FUZZ
def test_signed_garbage_is_4xx(client, fuzz_connector, body):
    before = row_counts()
    response = post(client, body, raw_sign(fuzz_connector.webhook_secret, body))
    assert_refused(response, before, 400, 401)


@given(envelope=mutated_envelopes())
@FUZZ
def test_signed_malformed_events_are_400_and_write_nothing(client, fuzz_connector, envelope):
    body = json.dumps(envelope, ensure_ascii=False).encode()
    before = row_counts()
    response = post(client, body, raw_sign(fuzz_connector.webhook_secret, body))
    if response.status_code == 202:  # the mutation happened to leave a valid event
        return
    assert_refused(response, before, 400)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "gb18030", "utf-8-sig"])
def test_wrongly_encoded_event_is_400(client, fuzz_connector, encoding):
    """Correctly signed but not plain UTF-8 (RFC 8259): the intake itself refuses it, whatever the
    signature library does with the bytes."""
    body = json.dumps(valid_envelope(), ensure_ascii=False).encode(encoding)
    before = row_counts()
    assert_refused(post(client, body, raw_sign(fuzz_connector.webhook_secret, body)), before, 400)


def test_invalid_utf8_inside_json_string_is_400(client, fuzz_connector):
    body = json.dumps(valid_envelope(), ensure_ascii=False).encode().replace("紧急".encode(), b"\xff\xfe\xfa")
    before = row_counts()
    assert_refused(post(client, body, raw_sign(fuzz_connector.webhook_secret, body)), before, 400)


def test_deeply_nested_json_is_4xx(client, fuzz_connector):
    body = b"[" * 100_000 + b"]" * 100_000
    before = row_counts()
    assert_refused(post(client, body, raw_sign(fuzz_connector.webhook_secret, body)), before, 400)


@pytest.mark.parametrize("size", [256 * 1024 + 1, 2 * 1024 * 1024])
def test_oversized_body_is_413(client, fuzz_connector, size):
    envelope = valid_envelope()
    envelope["data"]["document"]["title"] = "x" * size
    body = json.dumps(envelope).encode()
    before = row_counts()
    assert_refused(post(client, body, raw_sign(fuzz_connector.webhook_secret, body)), before, 413)


def test_replays(client, fuzz_connector):
    secret = fuzz_connector.webhook_secret
    body = json.dumps(valid_envelope(), ensure_ascii=False).encode()
    headers = raw_sign(secret, body)
    assert post(client, body, headers).status_code == 202
    after_first = row_counts()

    again = post(client, body, headers)  # the same delivery again: accepted as a duplicate, nothing new
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert row_counts() == after_first

    other_id = {**headers, "webhook-id": "msg_replayed_under_new_id"}  # signature covers the id
    assert_refused(post(client, body, other_id), after_first, 401)

    tampered = body.replace(b"12800.00", b"99999.00")  # same headers, changed body
    assert_refused(post(client, tampered, headers), after_first, 401)

    old = raw_sign(secret, body, webhook_id="msg_old", at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    assert_refused(post(client, body, old), after_first, 401)  # outside the 5-minute window

    future = raw_sign(secret, body, webhook_id="msg_future", at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    assert_refused(post(client, body, future), after_first, 401)


def test_duplicate_event_under_new_signature_writes_no_second_document(client, fuzz_connector):
    envelope = valid_envelope()
    body = json.dumps(envelope, ensure_ascii=False).encode()
    assert post(client, body, raw_sign(fuzz_connector.webhook_secret, body)).status_code == 202
    from approvals.models import ApprovalDocument

    documents = ApprovalDocument.objects.count()
    again = copy.deepcopy(envelope)
    again["id"] = "evt-replayed"
    body = json.dumps(again, ensure_ascii=False).encode()
    response = post(client, body, raw_sign(fuzz_connector.webhook_secret, body))
    assert response.status_code in (202, 400, 409)
    assert ApprovalDocument.objects.count() == documents
