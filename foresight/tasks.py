"""Beat jobs (schedules in settings, "Foresight") and the per-claim scoring task."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from erp.connectors.base import DEMAND_HISTORY, EXPENSE_HISTORY, INVOICE_HISTORY
from foresight import services


@shared_task
def forecast_demand() -> dict[str, Any]:
    """Nightly: refit the series whose history changed (bounded), restock suggestions, cards."""
    return {row.slug: getattr(services.run_demand(row), "version", None)
            for row, _erp in services.connectors_with(DEMAND_HISTORY)}


@shared_task
def score_receivables() -> dict[str, Any]:
    """Nightly: retrain the late-payment model, score open invoices, alert on crossings."""
    return {row.slug: getattr(services.run_credit(row), "version", None)
            for row, _erp in services.connectors_with(INVOICE_HISTORY)}


@shared_task
def score_expenses() -> dict[str, Any]:
    """Nightly: expense statistics from the history, every pending claim scored again."""
    return {row.slug: getattr(services.run_expense(row), "version", None)
            for row, _erp in services.connectors_with(EXPENSE_HISTORY)}


@shared_task
def nightly() -> dict[str, Any]:
    return {"demand": forecast_demand(), "credit": score_receivables(), "expense": score_expenses()}


@shared_task
def risk_digest() -> dict[str, int]:
    """Weekly: the receivables-at-risk digest to sales reps and finance."""
    return {row.slug: services.send_risk_digest(row) for row, _erp in services.connectors_with(INVOICE_HISTORY)}


@shared_task(acks_late=True)
def score_expense_claim(document_id: int, category: str) -> bool:
    from approvals.models import ApprovalDocument

    document = ApprovalDocument.objects.filter(pk=document_id, status="pending").select_related("connector").first()
    if document is None:
        return False
    score = services.score_claim(document, category)
    return bool(score and score.flagged)
