"""The portal's way into the demo ERP: read an approval document, write a decision back."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from erp.connectors.base import (
    PURCHASING_CAPABILITIES,
    ConnectorError,
    DecisionConflict,
    DocumentLine,
    DocumentSnapshot,
    ErpUser,
    Outcome,
    WritebackResult,
)

from .capabilities import FORESIGHT_CAPABILITIES, HistoryCapabilities
from .models import (
    AppliedDecision,
    ApprovalDocument,
    DemoUser,
    DocumentState,
    ExpenseClaim,
    FaultPlan,
    PurchaseRequisition,
)
from .purchasing import PurchasingCapabilities
from .reads import READ_CAPABILITIES, ReadCapabilities

# ERP state -> the state names of DocumentSnapshot. A draft was never submitted; the portal only
# hears of submitted documents, so it reads as pending rather than inventing a fifth state.
SNAPSHOT_STATES = {
    DocumentState.DRAFT: "pending",
    DocumentState.WAITING: "pending",
    DocumentState.APPROVED: "approved",
    DocumentState.REJECTED: "rejected",
    DocumentState.CANCELLED: "cancelled",
}
OUTCOME_STATES = {"approved": DocumentState.APPROVED, "rejected": DocumentState.REJECTED}


def find_document(number: str, *, for_update: bool = False) -> ApprovalDocument | None:
    """The requisition or expense claim with this number (locked when ``for_update``)."""
    for model in (PurchaseRequisition, ExpenseClaim):
        queryset = model.objects.select_related("project")
        if for_update:
            # of=("self",): lock the document only; Postgres refuses FOR UPDATE on the nullable side
            # of the outer join to project.
            queryset = queryset.select_for_update(of=("self",))
        document = queryset.filter(number=number).first()
        if document is not None:
            return document
    return None


class DemoConnector(HistoryCapabilities, ReadCapabilities, PurchasingCapabilities):
    """ErpConnector for the built-in demo ERP (see erp.connectors.base)."""

    slug = "demo"
    capabilities = FORESIGHT_CAPABILITIES | READ_CAPABILITIES | PURCHASING_CAPABILITIES

    def users(self) -> list[ErpUser]:
        return [
            ErpUser(login=u.login, name=u.name, email=u.email, roles=tuple(u.roles or ()), employee=u.name,
                    department=u.department)
            for u in DemoUser.objects.order_by("login")
        ]

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        document = find_document(external_id)
        if document is None:
            return None
        lines: list[DocumentLine] = []
        if isinstance(document, PurchaseRequisition):
            lines = [
                DocumentLine(sku=line.sku, name=line.name, qty=line.qty, unit_price=line.unit_price)
                for line in document.lines.all()
            ]
        return DocumentSnapshot(
            id=document.number,
            kind=document.kind,
            title=document.title,
            amount=document.amount,
            currency=document.currency,
            requester=document.requester,
            project=document.project.name if document.project else "",
            state=SNAPSHOT_STATES[document.state],
            approvers=list(document.approvers),
            lines=lines,
            decided_by=document.decided_by,
            decided_at=document.decided_at,
        )

    def decide(
        self,
        external_id: str,
        outcome: Outcome,
        *,
        actor: str,
        comment: str,
        idempotency_key: str,
    ) -> WritebackResult:
        if outcome not in OUTCOME_STATES:
            raise ConnectorError(f"unknown outcome {outcome!r}", permanent=True)
        if not idempotency_key:
            raise ConnectorError("an idempotency key is required", permanent=True)
        # Injected faults play an unreachable ERP, so they come before anything the ERP would do.
        self._apply_faults()
        try:
            result = self._decide(external_id, outcome, actor=actor, comment=comment, key=idempotency_key)
        except IntegrityError:
            # A concurrent call with the same key won (only possible where row locks are not real,
            # e.g. SQLite); its record is the answer.
            applied = AppliedDecision.objects.filter(idempotency_key=idempotency_key).first()
            if applied is None:
                raise
            return _result(applied, replayed=True)
        if not result.replayed:
            stall = FaultPlan.current().stall_seconds
            if stall > 0:
                # The ERP has committed; a worker that dies here leaves the portal not knowing.
                time.sleep(stall)
        return result

    def _apply_faults(self) -> None:
        plan = FaultPlan.current()
        if plan.permanent_failure:
            raise ConnectorError("demo ERP refuses the call (fault plan: permanent failure)", permanent=True)
        if plan.transient_failures_left <= 0:
            return
        # Own atomic block, committed before we raise: the next attempt (maybe in another worker
        # process) must see one failure fewer. The conditional update is race-free without locks.
        with transaction.atomic():
            taken = FaultPlan.objects.filter(pk=1, transient_failures_left__gt=0).update(
                transient_failures_left=F("transient_failures_left") - 1
            )
        if taken:
            raise ConnectorError("demo ERP unavailable (fault plan: transient failure)", permanent=False)

    def _decide(
        self, number: str, outcome: Outcome, *, actor: str, comment: str, key: str
    ) -> WritebackResult:
        with transaction.atomic():
            # Lock the document first so that two calls with the same key serialise here and the
            # second one finds the first one's AppliedDecision below.
            document = find_document(number, for_update=True)
            applied = AppliedDecision.objects.filter(idempotency_key=key).first()
            if applied is not None:
                if applied.document_number != number:
                    raise ConnectorError(
                        f"idempotency key {key!r} was already used for {applied.document_number}",
                        permanent=True,
                    )
                return _result(applied, replayed=True)
            if document is None:
                raise ConnectorError(f"the demo ERP has no document {number!r}", permanent=True)
            if document.is_decided:
                raise DecisionConflict(document.state, document.decided_by, document.decided_at)
            if document.state != DocumentState.WAITING:
                raise ConnectorError(
                    f"{number} is not waiting for approval ({document.state})", permanent=True
                )
            if actor not in document.approvers:
                raise ConnectorError(f"{actor!r} is not an approver of {number}", permanent=True)

            now = timezone.now()
            document.state = OUTCOME_STATES[outcome]
            document.decided_by = actor
            document.decided_at = now
            document.decision_comment = comment
            document.save(update_fields=["state", "decided_by", "decided_at", "decision_comment"])
            applied = AppliedDecision.objects.create(
                idempotency_key=key,
                document_number=number,
                outcome=outcome,
                actor=actor,
                comment=comment,
                decided_at=now,
            )
        return _result(applied, replayed=False)


def _result(applied: AppliedDecision, *, replayed: bool) -> WritebackResult:
    return WritebackResult(
        outcome=applied.outcome,  # type: ignore[arg-type]  # stored from an Outcome
        decided_by=applied.actor,
        decided_at=applied.decided_at,
        erp_reference=str(applied.pk),
        replayed=replayed,
    )
