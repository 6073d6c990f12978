"""Reading approval documents, always through ``restrict()`` / ``authorize()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from approvals.models import ApprovalDocument
from sso.authz import authorize, restrict


def visible_documents(user: Any) -> QuerySet[ApprovalDocument]:
    return restrict(ApprovalDocument.objects.all(), user, "approvals.view")


def pending_for(user: Any) -> QuerySet[ApprovalDocument]:
    """Documents waiting for ``user``'s decision, newest first."""
    return restrict(ApprovalDocument.objects.all(), user, "approvals.decide").order_by("-urgent", "-created_at")


@dataclass(frozen=True)
class PendingPage:
    """What waits for a person's decision: the first ``documents`` and how many there are in all."""

    documents: list[ApprovalDocument]
    total: int

    @property
    def shortened(self) -> bool:
        return len(self.documents) < self.total


def pending_page(user: Any, limit: int | None = None) -> PendingPage:
    """The one answer to "what waits for me" (bot, /w/pending/, /approvals/): the same documents in
    the same order everywhere; a page that shows fewer says so ("10 of 17")."""
    queryset = pending_for(user)
    documents = list(queryset[:limit] if limit else queryset)
    total = len(documents) if limit is None or len(documents) < limit else queryset.count()
    return PendingPage(documents, total)


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
