"""Reading notification data, always through ``restrict()`` where documents are involved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from notifications.models import ChatGroup, Notification
from sso.authz import restrict


def bulk_candidates(user: Any, *, kind: str = "", max_amount: Decimal | None = None) -> QuerySet:
    """Pending documents ``user`` may decide (in their name or a delegator's), small ones first."""
    from approvals.models import ApprovalDocument

    qs = restrict(ApprovalDocument.objects.filter(status=ApprovalDocument.Status.PENDING), user, "approvals.decide")
    if kind:
        qs = qs.filter(kind=kind)
    if max_amount is not None:
        qs = qs.filter(amount__lte=max_amount)
    return qs.order_by("amount", "external_id")


def bulk_selection(user: Any, document_ids: list[int]) -> list:
    """The ticked documents ``user`` may still decide, in the page's order (what a confirmation names)."""
    return list(bulk_candidates(user).filter(pk__in=document_ids))


def totals_by_currency(documents: list) -> list[tuple[str, Decimal]]:
    """The sum of ``documents``' amounts per currency, largest first (mixed currencies never add up)."""
    totals: dict[str, Decimal] = {}
    for document in documents:
        totals[document.currency] = totals.get(document.currency, Decimal(0)) + document.amount
    return sorted(totals.items(), key=lambda item: (-abs(item[1]), item[0]))


def notifications_for(user: Any) -> QuerySet[Notification]:
    return Notification.objects.filter(recipient=user).select_related("rule").order_by("-created_at")


def open_groups_about(subject_topic: str) -> QuerySet[ChatGroup]:
    return ChatGroup.objects.filter(subject_topic=subject_topic, state=ChatGroup.State.OPEN)
