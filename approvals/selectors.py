"""Reading approval documents, always through ``restrict()`` / ``authorize()``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import ApprovalDocument
from sso.authz import authorize, restrict


def visible_documents(user: Any) -> QuerySet[ApprovalDocument]:
    return restrict(ApprovalDocument.objects.all(), user, "approvals.view")


def pending_for(user: Any) -> QuerySet[ApprovalDocument]:
    """Documents waiting for ``user``'s decision, newest first."""
    return restrict(ApprovalDocument.objects.all(), user, "approvals.decide").order_by("-urgent", "-created_at")


def recent_for(user: Any, limit: int = 20) -> QuerySet[ApprovalDocument]:
    return visible_documents(user).exclude(status=ApprovalDocument.Status.PENDING).order_by("-updated_at")[:limit]


def document_for(user: Any, document_id: int) -> ApprovalDocument | None:
    """The document if ``user`` may see it; None for "missing" and "forbidden" alike."""
    document = (
        ApprovalDocument.objects.select_related("connector")
        .prefetch_related("lines", "history", "assignments")
        .filter(pk=document_id)
        .first()
    )
    if document is None or not authorize(user, "approvals.view", document):
        return None
    return document
