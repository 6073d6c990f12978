"""Who may view and decide approval documents. Registered with ``sso.authz`` at start-up.

Viewing is whatever the admin-edited rules grant (``approvals.view``). Deciding needs three things:
the ERP named this person (or the person who delegated to them) as an approver, a rule grants
``approvals.decide`` on this document (amount limits, projects…), and the document still waits.
Nobody decides their own request, even as someone's delegate.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument, Decision
from sso.authz import Policy, Verdict
from sso.permissions import ConstraintFields, grant, granted_queryset


def _is_approver(user, document: ApprovalDocument) -> bool:
    approvers = document.approvers_read()
    if approvers is not None:  # read already: no query
        return any(a.user_id == user.pk for a in approvers)
    return document.assignments.filter(user=user).exists()


CONSTRAINT_FIELDS = ConstraintFields(
    kind="kind",
    amount="amount",
    currency="currency",
    project="project",
    cost_center="cost_center",
    department="department",
    own=lambda user: Q(requester=user) | Q(assignments__user=user),
    is_own=lambda user, document: document.requester_id == user.pk or _is_approver(user, document),
)


def can_view(user, document: ApprovalDocument) -> Verdict:
    if not isinstance(document, ApprovalDocument):
        return Verdict(False, "not an approval document")
    granted = grant(user, "approvals.view", document)
    return Verdict(granted.allowed, granted.chain[-1], granted.chain)


def restrict_view(queryset: QuerySet, user) -> QuerySet:
    return granted_queryset(queryset, user, "approvals.view")


def separation_of_duties(user, document) -> str | None:
    """What the person acting may never do, in their name or as a delegate: decide their own
    request, or take a second step of one multi-step approval."""
    if not isinstance(document, ApprovalDocument):
        return None
    if document.requester_id == user.pk:
        return _("Nobody may approve their own request.")
    if document.step > 1 and document.decisions.filter(step__lt=document.step).filter(
        Q(actor=user) | Q(on_behalf_of=user)
    ).exists():
        return _("You decided an earlier step of this request; another person must decide this one.")
    return None


def can_decide(user, document: ApprovalDocument) -> Verdict:
    if not isinstance(document, ApprovalDocument):
        return Verdict(False, "not an approval document")
    if document.status != ApprovalDocument.Status.PENDING:
        return Verdict(False, _("This request is no longer waiting for a decision."))
    if not _is_approver(user, document):
        reason = _("%(user)s is not an approver of this request.") % {"user": user}
        return Verdict(False, reason, (reason,))
    granted = grant(user, "approvals.decide", document)
    return Verdict(granted.allowed, granted.chain[-1], (_("named approver"), *granted.chain))


def restrict_decide(queryset: QuerySet, user) -> QuerySet:
    took_a_step = Decision.objects.filter(document=OuterRef("pk"), step__lt=OuterRef("step")).filter(
        Q(actor=user) | Q(on_behalf_of=user)
    )
    waiting = (
        queryset.filter(assignments__user=user, status=ApprovalDocument.Status.PENDING)
        .exclude(requester=user)
        .exclude(Exists(took_a_step))
    )
    return granted_queryset(waiting, user, "approvals.decide")


VIEW = Policy(check=can_view, restrict=restrict_view)
DECIDE = Policy(check=can_decide, restrict=restrict_decide, forbids=separation_of_duties)


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
