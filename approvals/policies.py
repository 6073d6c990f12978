"""Who may view and decide approval documents. Registered with ``sso.authz`` at start-up.

Skeleton rules (the identity issue replaces them with admin-edited mappings): the approvers the
ERP named may view and decide; the requester may view; nobody decides their own request.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument
from sso.authz import Policy, Verdict


def _is_approver(user, document: ApprovalDocument) -> bool:
    return document.assignments.filter(user=user).exists()


def can_view(user, document: ApprovalDocument) -> Verdict:
    if not isinstance(document, ApprovalDocument):
        return Verdict(False, "not an approval document")
    if document.requester_id == user.pk:
        return Verdict(True, _("requester"))
    if _is_approver(user, document):
        return Verdict(True, _("named approver"))
    return Verdict(False, _("neither the requester nor an approver"))


def restrict_view(queryset: QuerySet, user) -> QuerySet:
    return queryset.filter(Q(requester=user) | Q(assignments__user=user)).distinct()


def can_decide(user, document: ApprovalDocument) -> Verdict:
    if not isinstance(document, ApprovalDocument):
        return Verdict(False, "not an approval document")
    if document.requester_id == user.pk:
        return Verdict(False, _("Nobody may approve their own request."))
    if not _is_approver(user, document):
        return Verdict(False, _("You are not an approver of this request."))
    if document.status != ApprovalDocument.Status.PENDING:
        return Verdict(False, _("This request is no longer waiting for a decision."))
    return Verdict(True, _("named approver"))


def restrict_decide(queryset: QuerySet, user) -> QuerySet:
    return (
        queryset.filter(assignments__user=user, status=ApprovalDocument.Status.PENDING)
        .exclude(requester=user)
        .distinct()
    )


VIEW = Policy(check=can_view, restrict=restrict_view)
DECIDE = Policy(check=can_decide, restrict=restrict_decide)


def may_subscribe_document(user, ident: str) -> Verdict:
    from sso.authz import authorize

    document = ApprovalDocument.objects.filter(pk=int(ident)).first() if ident.isdigit() else None
    if document is None:
        return Verdict(False, "unknown document")
    return authorize(user, "approvals.view", document)


def may_subscribe_inbox(user, ident: str) -> Verdict:
    if not user.is_authenticated or str(user.pk) != ident:
        return Verdict(False, _("only your own inbox"))
    return Verdict(True, _("own inbox"))
