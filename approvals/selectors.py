"""Reading approval documents, always through ``restrict()`` / ``authorize()``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet

from approvals.models import ApprovalAssignment, ApprovalDocument, Decision
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
    # Assignments (with their users' names) serve the check and every page; lines and history are
    # read only where they are shown, so a cached widget or a 304 does not read them.
    document = (
        ApprovalDocument.objects.select_related("connector", "requester")
        # The approvers with their users in one query (a two-level prefetch took two).
        .prefetch_related(Prefetch("assignments", ApprovalAssignment.objects.select_related("user")))
        .filter(pk=document_id)
        .first()
    )
    if document is None or not authorize(user, "approvals.view", document):
        return None
    return document


# The auditors' export (registered with trust.selectors.register_export in ApprovalsConfig.ready).
DECISION_EXPORT_FIELDS = [
    "kind", "id", "at", "document", "outcome", "actor", "on_behalf_of", "via", "writeback_status", "written_back_at",
]


def decisions_for_export(start: Any, end: Any) -> Iterator[dict]:
    """Decisions created in [start, end): who decided what, when; never the comment."""
    decisions = (
        Decision.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("document", "actor", "on_behalf_of")
        .order_by("created_at", "pk")
    )
    for d in decisions.iterator(chunk_size=1000):
        yield {
            "kind": "decision", "id": d.pk, "at": d.created_at, "document": d.document.external_id,
            "outcome": d.outcome, "actor": d.actor.get_username(),
            "on_behalf_of": d.on_behalf_of.get_username() if d.on_behalf_of else "", "via": d.via,
            "writeback_status": d.writeback_status, "written_back_at": d.written_back_at,
        }
