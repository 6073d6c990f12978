"""The generic connector against a small REST ERP (httpx.MockTransport) that applies idempotency keys."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.utils import translation

from erp.connectors.base import ConnectorError, DecisionConflict

from . import connector as connector_module
from .config import parse_config, resolve
from .connector import GenericConnector

OPTIONS: dict[str, Any] = {
    "kind": "purchase_requisition",
    "auth_header": "X-Api-Token",
    "auth_prefix": "",
    "test_document": "PR-7",
    "read": {
        "url": "/api/requisitions/{id}",
        "root": "data",
        "fields": {"id": "number", "title": "title", "amount": "total", "currency": "currency",
                   "requester": "requester.login", "project": "project.name", "state": "status",
                   "approvers": "approvers[].login", "decided_by": "decision.by", "decided_at": "decision.at"},
        "lines": {"path": "lines", "sku": "code", "name": "name", "qty": "qty", "unit_price": "price"},
        "states": {"pending": ["waiting"], "approved": ["approved"], "rejected": ["rejected"]},
    },
    "decide": {
        "method": "POST",
        "url": "/api/requisitions/{id}/decision",
        "body": {"decision": "{outcome}", "by": "{actor}", "note": "{comment} ({id})"},
        "outcomes": {"approved": "approve", "rejected": "reject"},
        "success_status": [200, 201],
        "conflict_status": [409],
        "result": {"decided_by": "decided_by", "decided_at": "decided_at", "reference": "id", "replayed": "replayed"},
    },
}


class FakeErp:
    """Answers like an ERP that honours Idempotency-Key: a repeat gets the first answer."""

    TOKEN = "tok-123"

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "number": "PR-7", "title": "备件", "total": "1200.50", "currency": "CNY",
            "requester": {"login": "zhang.san"}, "project": {"name": "项目A"}, "status": "waiting",
            "approvers": [{"login": "li.si"}, {"login": "wang.wu"}], "decision": None,
            "lines": [{"code": "SKU-1", "name": "轴承", "qty": 2, "price": "600.25"}],
        }
        self.applied: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.status_override: int | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("X-Api-Token") != self.TOKEN:
            return httpx.Response(401, json={"error": "unauthorized"})
        if self.status_override:
            return httpx.Response(self.status_override, text="busy")
        if request.method == "GET":
            if request.url.path != f"/api/requisitions/{self.doc['number']}":
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(200, json={"data": self.doc})
        assert request.url.path == "/api/requisitions/PR-7/decision"
        key = request.headers["Idempotency-Key"]
        if key in self.applied:
            return httpx.Response(200, json={**self.applied[key], "replayed": True})
        if self.doc["status"] != "waiting":
            return httpx.Response(409, json={"error": "already decided"})
        body = json.loads(request.content)
        self.doc["status"] = {"approve": "approved", "reject": "rejected"}[body["decision"]]
        self.doc["decision"] = {"by": body["by"], "at": "2026-03-02T09:00:00+00:00"}
        self.applied[key] = {"id": f"D-{len(self.applied) + 1}", "decided_by": body["by"],
                             "decided_at": "2026-03-02T09:00:00+00:00", "replayed": False, "note": body["note"]}
        return httpx.Response(201, json=self.applied[key])


@pytest.fixture
def erp() -> FakeErp:
    return FakeErp()


def connector(erp: FakeErp, token: str = FakeErp.TOKEN) -> GenericConnector:
    return GenericConnector(config=parse_config(OPTIONS), base_url="https://erp.invalid", token=token,
                            transport=erp.transport())


def test_paths() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert resolve(data, "a.b[].c") == [1, 2]
    assert resolve(data, "a.b.1.c") == 2
    assert resolve(data, "a.x.c") is None


def test_read_maps_the_fields(erp: FakeErp) -> None:
    snapshot = connector(erp).read_document("PR-7")
    assert snapshot is not None
    assert (snapshot.id, snapshot.kind, snapshot.title, snapshot.amount, snapshot.currency) == (
        "PR-7", "purchase_requisition", "备件", Decimal("1200.50"), "CNY")
    assert (snapshot.requester, snapshot.project, snapshot.state, snapshot.approvers) == (
        "zhang.san", "项目A", "pending", ["li.si", "wang.wu"])
    [line] = snapshot.lines
    assert (line.sku, line.qty, line.unit_price) == ("SKU-1", Decimal(2), Decimal("600.25"))
    assert connector(erp).read_document("PR-404") is None
    assert erp.requests[0].headers["X-Api-Token"] == FakeErp.TOKEN


def test_decide_sends_the_key_and_a_repeat_is_a_replay(erp: FakeErp) -> None:
    first = connector(erp).decide("PR-7", "approved", actor="li.si", comment="同意", idempotency_key="k-1")
    assert (first.outcome, first.decided_by, first.erp_reference, first.replayed) == ("approved", "li.si", "D-1", False)
    assert first.decided_at == dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    sent = erp.requests[-1]
    assert sent.headers["Idempotency-Key"] == "k-1"
    assert json.loads(sent.content) == {"decision": "approve", "by": "li.si", "note": "同意 (PR-7)"}
    again = connector(erp).decide("PR-7", "approved", actor="li.si", comment="同意", idempotency_key="k-1")
    assert (again.replayed, again.erp_reference, len(erp.applied)) == (True, "D-1", 1)


def test_conflict_status_reads_who_decided(erp: FakeErp) -> None:
    connector(erp).decide("PR-7", "rejected", actor="wang.wu", comment="", idempotency_key="k-2")
    with pytest.raises(DecisionConflict) as caught:
        connector(erp).decide("PR-7", "approved", actor="li.si", comment="", idempotency_key="k-3")
    assert (caught.value.outcome, caught.value.decided_by) == ("rejected", "wang.wu")


def test_failures_are_classified(erp: FakeErp) -> None:
    with pytest.raises(ConnectorError) as refused:
        connector(erp, token="wrong").decide("PR-7", "approved", actor="li.si", comment="", idempotency_key="k-4")
    assert refused.value.permanent is True
    erp.status_override = 503
    with pytest.raises(ConnectorError) as busy:
        connector(erp).decide("PR-7", "approved", actor="li.si", comment="", idempotency_key="k-4")
    assert busy.value.permanent is False
    erp.status_override = None
    erp.doc["status"] = "on hold"
    with pytest.raises(ConnectorError, match="not mapped"):
        connector(erp).read_document("PR-7")
    with pytest.raises(ConnectorError) as no_accounts:  # never an empty list: the sync would drop every role
        connector(erp).users()
    assert no_accounts.value.permanent is True


@translation.override("en")
def test_config_errors_are_clear() -> None:
    with pytest.raises(ValueError) as caught:
        parse_config({
            "read": {"url": "https://elsewhere.example/{id}", "fields": {"state": "status", "colour": "x"},
                     "states": {"waiting": ["w"]}},
            "decide": {"method": "DELETE", "url": "/d/{id}/{secret}", "body": {"a": "{password}"},
                       "outcomes": {"approved": "ok"}},
            "extra": 1,
        })
    message = str(caught.value)
    for expected in (
        "Unknown keys: extra", "“read.url” must be a path starting with “/”", "“read.fields” has unknown keys colour",
        "unknown state “waiting”", "“read.states” must say which values mean “pending”",
        "“decide.method” must be one of", "“decide.url” uses {secret}", "“decide.body” uses {password}",
        "“decide.outcomes” must give",
    ):
        assert expected in message, (expected, message)
    assert parse_config(OPTIONS).decide.outcomes == {"approved": "approve", "rejected": "reject"}


@pytest.mark.django_db
@translation.override("en")
def test_admin_form_refuses_a_bad_configuration() -> None:
    from erp.admin import ConnectorSettingsForm
    from erp.models import Connector, ConnectorSettings

    row = Connector.objects.create(slug="generic", name="Any ERP", kind="generic")
    data = {"base_url": "https://erp.invalid", "poll_interval": 0, "password": "tok",
            "options": json.dumps({"read": {"url": "/r/{id}"}})}
    form = ConnectorSettingsForm(data=data, instance=ConnectorSettings(connector=row))
    assert not form.is_valid()
    assert "“read.fields” must be a JSON object." in form.errors["options"][0]
    good = ConnectorSettingsForm(data={**data, "options": json.dumps(OPTIONS)},
                                 instance=ConnectorSettings(connector=row))
    assert good.is_valid(), good.errors
    odoo = Connector.objects.create(slug="odoo-x", name="Odoo", kind="odoo")
    missing = ConnectorSettingsForm(data={"base_url": "https://odoo.invalid", "poll_interval": 0},
                                    instance=ConnectorSettings(connector=odoo))
    assert not missing.is_valid()
    assert set(missing.errors) >= {"database", "login", "password"}


@pytest.mark.django_db
def test_signed_event_in_then_portal_decision_written_back(
    erp: FakeErp, monkeypatch: pytest.MonkeyPatch, client, django_capture_on_commit_callbacks
) -> None:
    """The loop with a generic ERP: its signed webhook makes the document; the decision goes back by REST."""
    from django.contrib.auth import get_user_model

    from approvals import services
    from approvals.models import ApprovalDocument, Decision
    from erp.connectors.report import connection_report
    from erp.models import Connector, ConnectorSettings
    from erp.signing import make_cloudevent, signed_request
    from sso.models import ErpIdentity, PermissionRule

    monkeypatch.setattr(connector_module, "default_transport", erp.transport())
    row = Connector.objects.create(slug="any-erp", name="Any ERP", kind="generic")
    settings = ConnectorSettings(connector=row, base_url="https://erp.invalid", options=OPTIONS)
    settings.set_password(FakeErp.TOKEN)
    settings.save()
    approver = get_user_model().objects.create_user("li.si", password="x")
    ErpIdentity.objects.create(user=approver, connector=row, erp_login="li.si")
    rule = PermissionRule.objects.create(name="approvers", actions=["approvals.view", "approvals.decide"],
                                         own_documents=True)
    rule.users.add(approver)

    envelope = make_cloudevent("erp.approval.requested", "urn:erp:any", {
        "document": {"id": "PR-7", "kind": "purchase_requisition", "title": "备件", "amount": "1200.50",
                     "currency": "CNY", "requester": "zhang.san", "project": "项目A", "urgent": False,
                     "lines": [{"sku": "SKU-1", "name": "轴承", "qty": "2", "unit_price": "600.25"}]},
        "approvers": ["li.si"],
    }, "PR-7")
    headers, body = signed_request(row.webhook_secret, envelope)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/erp/any-erp/events", body, content_type="application/cloudevents+json",
                               headers={k: v for k, v in headers.items() if k != "content-type"})
    assert response.status_code == 202, response.content
    document = ApprovalDocument.objects.get(connector=row, external_id="PR-7")
    with django_capture_on_commit_callbacks(execute=True):
        services.decide(approver, document.pk, "approved", comment="同意", idempotency_key="portal-key-1")
    decision = Decision.objects.get(document=document)
    assert (decision.writeback_status, decision.erp_reference) == ("done", "D-1"), decision.writeback_error
    assert list(erp.applied) == ["portal-key-1"] and erp.doc["status"] == "approved"

    with translation.override("en"):
        ok, lines = connection_report(row)
    assert ok is True, lines
    assert any(line.startswith("✓ read a document") and "PR-7" in line for line in lines), lines
