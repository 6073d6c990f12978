"""An expense claim waiting for approval is scored after the intake commits, in a task (never inside
the webhook request); its approval card is then edited to show the flag."""

from __future__ import annotations

from django.db import transaction

from erp.events import ErpEvent


def on_event(event: ErpEvent) -> None:
    if event.type != "erp.approval.requested":
        return
    document_data = event.data.get("document") if isinstance(event.data, dict) else None
    if not isinstance(document_data, dict) or document_data.get("kind") != "expense_claim":
        return
    from approvals.models import ApprovalDocument

    document = ApprovalDocument.objects.filter(connector=event.connector,
                                               external_id=str(document_data.get("id", ""))).first()
    category = str(document_data.get("category") or "")[:60]
    if document is None or not category:
        return
    from foresight import tasks

    transaction.on_commit(lambda: tasks.score_expense_claim.delay(document.pk, category))
