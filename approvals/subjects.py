"""Approval documents as subjects of events and notifications (registered in ``ApprovalsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from approvals.models import ApprovalDocument
from erp.events import ErpEvent
from erp.subjects import EventSubject, event_data, money, quantity


def approval_facts(document: Any, lines: list[Any] | None = None) -> dict[str, Any]:
    """The facts rules and templates read; ``lines`` when the caller has just written them."""
    lines = list(document.lines.all()) if lines is None else lines
    return {
        "number": document.external_id,
        "title": document.title,
        "kind": document.kind,
        "amount": money(document.amount),
        "amount_value": str(document.amount),
        "currency": document.currency,
        "project": document.project,
        "department": document.department,
        "urgent": document.urgent,
        "requester": document.requester_login,
        "status": document.status,
        "decided_by": document.decided_by_name,
        "lines": ", ".join(f"{line.name} ×{quantity(line.qty)}" for line in lines),
    }


def document_subject(document: ApprovalDocument, facts: dict[str, Any] | None = None) -> EventSubject:
    return EventSubject(document.topic, document, "approvals.view",
                        approval_facts(document) if facts is None else facts, document.get_absolute_url())


def from_event(event: ErpEvent) -> EventSubject | None:
    data = event_data(event)
    doc_id = str((data.get("document") or {}).get("id", ""))
    document = ApprovalDocument.objects.filter(connector=event.connector, external_id=doc_id).first()
    if document is None:
        return None
    facts = approval_facts(document)
    if event.type == "erp.approval.decided":
        facts["outcome"] = str(data.get("outcome", ""))
    return document_subject(document, facts)


def from_id(pk: int) -> EventSubject | None:
    document = ApprovalDocument.objects.filter(pk=pk).first()
    return document and document_subject(document)
