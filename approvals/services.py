"""State changes of approval documents: mirror ERP events, decide, write back.

Views, API, card buttons, the bot and tasks all come through here. Side effects (writeback task,
card edits, live pages) are queued with ``transaction.on_commit`` so they see committed state.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from approvals.held import hold_after_commit, touched
from approvals.kinds import allows_credit
from approvals.models import ApprovalAssignment, ApprovalDocument, ApprovalLine, Decision, HistoryEntry
from approvals.subjects import approval_facts, document_subject
from erp.connectors import get_connector
from erp.connectors.base import ConnectorError, DecisionConflict
from erp.events import ErpEvent, EventDataError
from erp.handling import read_many_once_per_batch
from erp.payload import boolean, decimal_for, integer, read, text
from im.services import OutboxItem, Recipient, card_items, enqueue_cards, refresh_cards, write_outbox
from portal.bulk import insert_rows, insert_rows_together
from portal.observability import hooks as observe
from portal.retry import backoff_seconds, next_attempt_at
from portal.tasks import queue_after_commit
from sso.authz import authorize
from sso.models import display_name
from sso.selectors import identities_for_logins, user_for_login
from widgets.live import publish

logger = logging.getLogger(__name__)

AMOUNT_STEP = Decimal(1).scaleb(-ApprovalDocument._meta.get_field("amount").decimal_places)  # 0.01


class DecisionError(Exception):
    """A decision that cannot be made; ``message`` is safe to show to the person who tried."""

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFoundOrForbidden(DecisionError):
    """Deliberately the same answer for "no such document" and "not yours": nothing leaks."""

    def __init__(self) -> None:
        super().__init__(_("Not found."), status=404)


# --- ERP events -------------------------------------------------------------------------------


def _parse_approval_requested(data: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[str], str]:
    """The document's fields, its lines, the approvers' ERP logins and its id, read from the event."""
    root = read(data)
    doc = root["document"]
    doc.object()
    approvers = [login.tame(text(max_length=150)) for login in root["approvers"].items()]
    if not approvers:
        raise EventDataError("data.approvers must be a non-empty list of ERP logins")
    fields = {
        "kind": doc["kind"].tame(text(max_length=50)),
        "title": doc["title"].tame(text(max_length=300)),
        # As the column holds it ("12800" is read back as 12800.00): the facts rules read are the same
        # whether taken from this event or read from the mirror.
        "amount": doc["amount"].tame(decimal_for(ApprovalDocument, "amount")).quantize(AMOUNT_STEP),
        "currency": doc["currency"].tame(text(max_length=3, required=False)).upper() or "CNY",
        "project": doc["project"].tame(text(max_length=100, required=False)),
        "cost_center": doc["cost_center"].tame(text(max_length=100, required=False)),
        "department": doc["department"].tame(text(max_length=150, required=False)),
        "urgent": doc["urgent"].tame(boolean(default=False)),
        "urgent_reason": doc["urgent_reason"].tame(text(max_length=500, required=False)),
        "requester_login": doc["requester"].tame(text(max_length=150)),
        "step": root["step"].tame(integer(minimum=1, maximum=50, default=1)),
    }
    lines = []
    for position, line in enumerate(doc["lines"].items(), start=1):
        line.object()
        lines.append({
            "position": position,
            "sku": line["sku"].tame(text(max_length=100, required=False)),
            "name": line["name"].tame(text(max_length=300)),
            "qty": line["qty"].tame(decimal_for(ApprovalLine, "qty")),
            "unit_price": line["unit_price"].tame(decimal_for(ApprovalLine, "unit_price")),
        })
    return fields, lines, approvers, doc["id"].tame(text(max_length=100))


def _prepare_approval_requested(event: ErpEvent) -> tuple[dict[str, Any], list[dict[str, Any]], list[str], str]:
    """The event read and checked, with its requester's identity (read once per batch of events: a
    worker's batch names the same people again and again)."""
    fields, parsed_lines, approvers, external_id = _parse_approval_requested(event.data)
    if fields["amount"] < 0 and not allows_credit(fields["kind"]):
        # "Amount at most 50,000" rules would otherwise let −99,999,999 through.
        raise EventDataError(f"data.document.amount must not be negative for a {fields['kind']}")
    connector = event.connector
    # The requester and the approvers in one read (each login read once per batch of events).
    fields["requester"], department = _identities(connector, [fields["requester_login"], *approvers]).get(
        fields["requester_login"]) or (None, "")
    if not fields["department"]:
        # Rules like "own department only" need one; the requester's ERP department is the usual.
        fields["department"] = department
    return fields, parsed_lines, approvers, external_id


def _identities(connector, logins: list[str]) -> dict[str, tuple[Any, str] | None]:
    """{login: (active user or None, department)}, None for a login without an identity; each login read
    once per batch of events (a worker's batch names the same people again and again)."""
    return read_many_once_per_batch(f"identities of connector {connector.pk}", logins,
                                    lambda missing: identities_for_logins(connector, missing))


def _users(connector, logins: list[str]) -> dict[str, Any]:
    """{login: active portal user} for those of ``logins`` linked to one."""
    return {login: found[0] for login, found in _identities(connector, logins).items()
            if found is not None and found[0] is not None}


def handle_approval_requested(event: ErpEvent) -> None:
    """``erp.approval.requested``: mirror the document and tell its approvers."""
    fields, parsed_lines, approvers, external_id = _prepare_approval_requested(event)
    connector = event.connector
    mirrored = _mirror_document(connector, external_id, fields, parsed_lines)
    if mirrored is None:
        return
    document, created, lines = mirrored
    recipients = _assign_approvers(document, created, connector, approvers, external_id)
    enqueue_cards(document.topic, recipients, dedupe_prefix=f"{event.connector.slug}:{event.id}")
    _note_and_announce(event, document, created, lines, recipients)


def _note_and_announce(event: ErpEvent, document: ApprovalDocument, created: bool, lines: list[ApprovalLine],
                       recipients: list[Recipient], *, unseen: frozenset[int] = frozenset()) -> None:
    # For this event's post-hooks (notification rules, delegates): the document as just written, so
    # they do not read it, its lines and (when new) its approvers again.
    event.notes["subject"] = subject = document_subject(document, approval_facts(document, lines))
    subject.unseen = unseen
    if created:
        event.notes["approvers"] = {r.user.pk: r.user for r in recipients}
        # A new document: nobody has a card of it to edit yet, and its approvers are the ones just read.
        _announce(document, involved={r.user.pk for r in recipients}, cards_sent=False)
    else:
        _announce(document)


def handle_approval_requested_many(events: list[ErpEvent]) -> int:
    """The set-based form of ``handle_approval_requested`` for a worker's run of events (registered with
    ``erp.events.register_many``). The leading events that each request a document not mirrored yet, and
    not requested earlier in the run, are written together: one insert each of their documents, lines,
    assignments and history, one outbox write for all their cards. The first event that is anything else
    (its document mirrored already or asked for twice: a next step, a revision, a request after the
    decision; or data the handler refuses) ends that part: it goes to the one-by-one handler, whose rules
    apply as before. Returns how many events were handled here (their post-hooks are erp's to run), or
    minus how many leading events are for the one-by-one path (their documents are mirrored already, or
    the first one's data is refused): handling those does not change what the events after them are."""
    if not connection.features.can_return_rows_from_bulk_insert:
        return -len(events)  # the new documents' ids are needed for their lines
    prepared = []
    for event in events:
        try:
            prepared.append((event, *_prepare_approval_requested(event)))
        except EventDataError:
            break  # refused alone, by the one-by-one path
    if not prepared:
        return -1
    wanted: dict[int, list[str]] = {}
    for event, *_parts, external_id in prepared:
        wanted.setdefault(event.connector.pk, []).append(external_id)
    existing = set(ApprovalDocument.objects.filter(
        functools.reduce(operator.or_, (Q(connector_id=pk, external_id__in=ids) for pk, ids in wanted.items()))
    ).values_list("connector_id", "external_id"))
    fresh = []
    mirrored = set(existing)
    for item in prepared:
        key = (item[0].connector.pk, item[-1])
        if key in mirrored:
            break
        mirrored.add(key)
        fresh.append(item)
    if not fresh:
        # Not tried again after each of them: a run of next steps or revisions is read once here.
        mirrored_already = 0
        for item in prepared:
            if (item[0].connector.pk, item[-1]) not in existing:
                break
            mirrored_already += 1
        return -max(mirrored_already, 1)

    # A concurrent writer of one of these documents makes this insert fail: the run is then handled one
    # by one (erp.handling), where get_or_create finds that writer's document.
    documents = [ApprovalDocument(connector=event.connector, external_id=external_id, **fields)
                 for event, fields, _lines, _approvers, external_id in fresh]
    insert_rows(ApprovalDocument, documents)
    lines_of = [[ApprovalLine(document=document, **line) for line in parsed_lines]
                for document, (_e, _f, parsed_lines, _a, _x) in zip(documents, fresh, strict=True)]
    logins_of = [list(dict.fromkeys(approvers)) for _e, _f, _l, approvers, _x in fresh]
    users: dict[int, dict[str, Any]] = {}
    connectors = {event.connector.pk: event.connector for event, *_parts in fresh}
    for pk, connector in connectors.items():
        logins = list(dict.fromkeys(login for (event, *_parts), logins in zip(fresh, logins_of, strict=True)
                                    if event.connector.pk == pk for login in logins))
        users[pk] = _users(connector, logins)
    assignments_of = [[ApprovalAssignment(document=document, erp_login=login,
                                          user=users[document.connector_id].get(login)) for login in logins]
                      for document, logins in zip(documents, logins_of, strict=True)]
    history: list[HistoryEntry] = []
    outbox: list[OutboxItem] = []
    recipients_of = []
    for document, logins, (event, fields, *_rest, external_id) in zip(documents, logins_of, fresh, strict=True):
        history.append(_requested_entry(document, fields))
        unrouted, recipients = _route_approvers(document, logins, users[document.connector_id], external_id)
        history += unrouted
        recipients_of.append(recipients)
        outbox += card_items(document.topic, recipients, dedupe_prefix=f"{event.connector.slug}:{event.id}")
    # The documents' lines, approvers and history refer to the documents only: one statement for the three.
    insert_rows_together([(ApprovalLine, [line for lines in lines_of for line in lines]),
                          (ApprovalAssignment, [assignment for assignments in assignments_of
                                                for assignment in assignments]),
                          (HistoryEntry, history)])
    hold_after_commit(zip(documents, assignments_of, strict=True))  # for their cards (approvals/held.py)
    write_outbox(outbox)
    for position, (document, lines, recipients, (event, *_parts)) in enumerate(
            zip(documents, lines_of, recipients_of, fresh, strict=True)):
        # One by one, the documents of the events after this one would not exist yet when its hooks ran.
        _note_and_announce(event, document, True, lines, recipients,
                           unseen=frozenset(d.pk for d in documents[position + 1:]))
    return len(fresh)


def _mirror_document(connector, external_id: str, fields: dict, parsed_lines: list[dict]
                     ) -> tuple[ApprovalDocument, bool, list[ApprovalLine]] | None:
    """Write the request into the mirror (new, a new step, or a revision of the pending one) with its
    lines and history; None when it is to be ignored (an earlier step, or asked again after the decision:
    its history says so)."""
    step = fields["step"]

    document, created = ApprovalDocument.objects.select_for_update().get_or_create(
        connector=connector, external_id=external_id, defaults=fields
    )
    touched(document.pk)  # its lines, approvers or state may change below (approvals/held.py)
    if not created and step > document.step and document.status == ApprovalDocument.Status.APPROVED:
        # The next step of a multi-step approval: the document waits again, for new approvers.
        HistoryEntry.objects.create(
            document=document, action="next_step", note=_("Step %(step)s of the approval.") % {"step": step}
        )
        document.assignments.all().delete()
        document.status = ApprovalDocument.Status.PENDING
        document.decided_by_name = ""
        document.decided_at = None
    elif not created and step < document.step:
        HistoryEntry.objects.create(
            document=document, action="ignored", note=_("The ERP asked again for an earlier step.")
        )
        return None
    if not created:
        if document.status != ApprovalDocument.Status.PENDING:
            HistoryEntry.objects.create(
                document=document, action="ignored", note=_("The ERP asked again after the decision.")
            )
            return None
        for name, value in fields.items():
            setattr(document, name, value)
        document.version += 1
        document.save()
        document.lines.all().delete()
    lines = ApprovalLine.objects.bulk_create(ApprovalLine(document=document, **line) for line in parsed_lines)
    _requested_entry(document, fields).save()
    return document, created, lines


def _requested_entry(document: ApprovalDocument, fields: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        document=document,
        actor_name=display_name(fields["requester"]) if fields["requester"] else fields["requester_login"],
        action="requested",
        note=_("Approval requested in the ERP."),
    )


def _assign_approvers(document: ApprovalDocument, created: bool, connector, approvers: list[str],
                      external_id: str) -> list[Recipient]:
    """The document's approvers as assignments, and who of them can be told (a login without a portal
    user is recorded in the history, never skipped silently)."""
    logins = list(dict.fromkeys(approvers))
    # Set-based, so 50 approvers cost the queries of 2: one read of their identities, one of the
    # assignments present, one insert and one update of the rest, one insert of the history.
    users = _users(connector, logins)
    present = {} if created else {
        a.erp_login: a for a in ApprovalAssignment.objects.filter(document=document, erp_login__in=logins)
    }
    changed = []
    for login in logins:
        assignment = present.get(login)
        if assignment is not None and assignment.user_id != getattr(users.get(login), "pk", None):
            assignment.user = users.get(login)
            changed.append(assignment)
    ApprovalAssignment.objects.bulk_update(changed, ["user"])
    ApprovalAssignment.objects.bulk_create(
        ApprovalAssignment(document=document, erp_login=login, user=users.get(login))
        for login in logins if login not in present
    )
    unrouted, recipients = _route_approvers(document, logins, users, external_id)
    HistoryEntry.objects.bulk_create(unrouted)
    return recipients


def _route_approvers(document: ApprovalDocument, logins: list[str], users: dict[str, Any], external_id: str,
                     ) -> tuple[list[HistoryEntry], list[Recipient]]:
    """Who of the approvers can be told, and a history entry (not saved) for each who cannot."""
    unrouted = []
    recipients = []
    for login in logins:
        user = users.get(login)
        if user is None:
            # Never skipped silently: the page and admin show who could not be told.
            unrouted.append(HistoryEntry(
                document=document,
                action="unrouted",
                note=_("ERP login %(login)s is not linked to a portal user; nobody was notified.")
                % {"login": login},
            ))
            logger.warning("approver %s of %s has no portal user", login, external_id)
            continue
        recipients.append(Recipient(user=user, reason=_("named approver in the ERP (%s)") % login))
    return unrouted, recipients


def handle_approval_decided(event: ErpEvent) -> None:
    """``erp.approval.decided``: a decision made in the ERP itself."""
    data = event.data
    root = read(data)
    external_id = root["document"]["id"].tame(text(max_length=100))
    outcome = root["outcome"].tame(text(max_length=20))
    if outcome not in {"approved", "rejected", "cancelled"}:
        raise EventDataError("data.outcome must be approved, rejected or cancelled")
    decided_by = root["decided_by"].tame(text(max_length=150, required=outcome != "cancelled"))
    decided_at = _parse_time(data.get("decided_at")) or timezone.now()
    document = (
        ApprovalDocument.objects.select_for_update()
        .filter(connector=event.connector, external_id=external_id)
        .first()
    )
    if document is None:
        raise EventDataError(f"unknown document {external_id}")
    touched(document.pk)
    if document.status == outcome:
        return  # our own writeback echoed by the ERP, or a repeat
    actor = user_for_login(event.connector, decided_by) if decided_by else None
    document.status = outcome
    document.decided_by_name = display_name(actor) if actor else decided_by
    document.decided_at = decided_at
    document.version += 1
    document.save()
    HistoryEntry.objects.create(
        document=document,
        actor_name=document.decided_by_name,
        action=f"erp_{outcome}",
        note=root["comment"].tame(text(max_length=2000, required=False)) or _("Decided in the ERP."),
    )
    _announce(document)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise EventDataError("decided_at must be an ISO 8601 timestamp") from exc
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt.UTC)


# --- Decisions --------------------------------------------------------------------------------


def describe_decision(document: ApprovalDocument) -> str:
    """"Already approved by 李四 at 10:02", in the active language and time zone."""
    when = formats.time_format(timezone.localtime(document.decided_at), "H:i") if document.decided_at else ""
    if document.status == ApprovalDocument.Status.APPROVED:
        return _("Already approved by %(name)s at %(time)s.") % {"name": document.decided_by_name, "time": when}
    if document.status == ApprovalDocument.Status.REJECTED:
        return _("Already rejected by %(name)s at %(time)s.") % {"name": document.decided_by_name, "time": when}
    return _("This request was cancelled in the ERP.")


@dataclass(frozen=True)
class DecideResult:
    decision: Decision
    replayed: bool
    # The document as this decision left it (a fresh decision only): the caller's answer need not read it again.
    document: ApprovalDocument | None = None


def decide(
    user: Any,
    document_id: int,
    outcome: str,
    *,
    comment: str = "",
    idempotency_key: str,
    expected_version: int | None = None,
    via: str = "page",
) -> DecideResult:
    """Record ``user``'s decision on a document, once.

    The same idempotency key again returns the first decision (a double tap, a retried request).
    A decision on a document that changed since the page was shown, or was decided elsewhere,
    raises DecisionError with a message saying who decided and when.
    """
    if outcome not in Decision.Outcome.values:
        raise DecisionError(_("Unknown decision %(outcome)s.") % {"outcome": outcome}, status=400)
    if not idempotency_key or len(idempotency_key) > 100:
        raise DecisionError(_("A decision needs an idempotency key of at most 100 characters."), status=400)
    comment = (comment or "").strip()
    if len(comment) > 2000:
        raise DecisionError(_("The comment is longer than 2000 characters."), status=400)

    try:
        with transaction.atomic():
            # Only the document's row is locked (a join's rows would be too: every decision on a connector
            # waited for the others); its approvers and lines serve the checks, the rules and the answer.
            document = (
                ApprovalDocument.objects.select_for_update(of=("self",)).select_related("connector")
                .prefetch_related("assignments", "lines").filter(pk=document_id).first()
            )
            if document is None or not authorize(user, "approvals.view", document):
                raise NotFoundOrForbidden()
            existing = Decision.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.document_id != document.pk or existing.actor_id != user.pk:
                    raise DecisionError(_("This idempotency key was used for another decision."), status=422)
                return DecideResult(existing, replayed=True)
            if document.status != ApprovalDocument.Status.PENDING:
                raise DecisionError(describe_decision(document))
            if expected_version is not None and expected_version != document.version:
                raise DecisionError(_("This request changed since you opened it. Please review it again."))
            verdict = authorize(user, "approvals.decide", document)
            if not verdict:
                raise DecisionError(verdict.reason, status=403)
            # A delegate decides in the name of the approver the ERP named: that is whose login the
            # ERP receives; both names are kept here.
            approver = verdict.acting_for or user
            assignment = next((a for a in document.assignments.all() if a.user_id == approver.pk), None)
            decision = Decision.objects.create(
                document=document,
                step=document.step,
                idempotency_key=idempotency_key,
                outcome=outcome,
                comment=comment,
                actor=user,
                on_behalf_of=verdict.acting_for,
                actor_erp_login=assignment.erp_login if assignment else approver.get_username(),
                via=via,
            )
            observe.decided(decision, document)  # log line; this request and its writeback carry the event id
            document.status = outcome
            document.decided_by_name = display_name(user)
            if verdict.acting_for is not None:
                document.decided_by_name = _("%(delegate)s for %(approver)s") % {
                    "delegate": display_name(user), "approver": display_name(verdict.acting_for)}
            document.decided_at = decision.created_at
            document.version += 1
            document.save()
            HistoryEntry.objects.create(
                document=document, actor_name=document.decided_by_name, action=outcome, note=comment
            )
            _announce(document)
            queue_after_commit(write_back_task(), decision.pk)
    except IntegrityError:
        # Two requests with the same key raced; the loser returns the winner's decision.
        existing = Decision.objects.filter(idempotency_key=idempotency_key, actor=user).first()
        if existing is None:
            raise
        return DecideResult(existing, replayed=True)
    return DecideResult(decision, replayed=False, document=document)


def write_back_task() -> Any:
    from approvals.tasks import write_back  # (tasks import this module)

    return write_back


def _announce(document: ApprovalDocument, *, involved: set[int] | None = None, cards_sent: bool = True) -> None:
    """After commit: every open page of the document, the involved people's lists (the approvers in
    ``involved`` when the caller knows them), and every sent card of it on every platform show the new
    state."""
    publish(document.topic, document.version)
    if involved is None:
        involved = _involved_user_ids(document)
    elif document.requester_id:
        involved = involved | {document.requester_id}
    for user_id in involved:
        publish(f"inbox.{user_id}", document.version)
    if cards_sent:
        refresh_cards(document.topic)


def _involved_user_ids(document: ApprovalDocument) -> set[int]:
    approvers = document.approvers_read()
    if approvers is not None:  # read already: no query
        ids = {a.user_id for a in approvers if a.user_id is not None}
    else:
        ids = set(document.assignments.exclude(user=None).values_list("user_id", flat=True))
    if document.requester_id:
        ids.add(document.requester_id)
    return ids



@dataclass(frozen=True)
class BulkItem:
    document_id: int
    number: str
    ok: bool
    message: str


def bulk_decide(user: Any, document_ids: list[int], outcome: str, *, batch: str, comment: str = "") -> list[BulkItem]:
    """Each document still goes through ``decide()`` (row lock, authorize(), idempotency key) in its
    own transaction and is written back on its own; one failure does not stop the others."""
    results = []
    for document_id in dict.fromkeys(document_ids):
        number = ApprovalDocument.objects.filter(pk=document_id).values_list("external_id", flat=True).first() or "?"
        try:
            result = decide(user, document_id, outcome, comment=comment,
                            idempotency_key=f"bulk:{batch}:{document_id}"[:100], via="bulk")
        except DecisionError as exc:
            results.append(BulkItem(document_id, number, False, exc.message))
            continue
        results.append(BulkItem(document_id, number, True,
                                _("already decided (same request)") if result.replayed else _("done")))
    return results

# --- Writeback --------------------------------------------------------------------------------


def write_back(decision_id: int, attempt: int | None = None) -> float | None:
    """Write one decision to its ERP. Returns seconds until a retry, or None when finished.

    Safe to run twice, concurrently or after a crash: the ERP connector applies an idempotency
    key at most once, and a finished writeback is never attempted again. ``attempt`` is the attempt a
    scheduled retry was queued to make: the same task delivered twice (Redis hands a countdown held
    past its visibility timeout to another worker) makes it once, so the second delivery does not use
    up an attempt. Without it (the first try, the safety net, an admin's retry) the next one is made.
    Two tasks at once claim an attempt each through the same compare-and-set of the count.
    """
    decision = Decision.objects.select_related("document__connector").filter(pk=decision_id).first()
    if decision is None or decision.writeback_status != Decision.Writeback.PENDING:
        return None
    made = decision.writeback_attempts if attempt is None else attempt - 1
    if attempt is not None and decision.writeback_attempts != made:
        return None  # this attempt was made already, by another delivery of this task
    if not Decision.objects.filter(pk=decision_id, writeback_status=Decision.Writeback.PENDING,
                                   writeback_attempts=made).update(writeback_attempts=made + 1):
        return None  # another task claimed this attempt meanwhile
    decision.writeback_attempts = made + 1
    observe.writeback_started(decision)
    document = decision.document
    try:
        result = get_connector(document.connector.kind, document.connector).decide(
            document.external_id,
            decision.outcome,
            actor=decision.actor_erp_login,
            comment=decision.comment,
            idempotency_key=decision.idempotency_key,
        )
    except DecisionConflict as conflict:
        _finish_writeback(
            decision,
            Decision.Writeback.CONFLICT,
            error=_("The ERP already holds: %(outcome)s by %(name)s.")
            % {"outcome": conflict.outcome, "name": conflict.decided_by},
            conflict=conflict,
        )
        return None
    except ConnectorError as exc:
        if exc.permanent or decision.writeback_attempts >= settings.WRITEBACK_MAX_ATTEMPTS:
            _finish_writeback(decision, Decision.Writeback.FAILED, error=str(exc))
            return None
        delay = backoff_seconds(decision.writeback_attempts)
        Decision.objects.filter(pk=decision_id).update(
            writeback_error=str(exc), writeback_next_at=next_attempt_at(delay)
        )
        logger.warning("writeback of decision %s failed, retry in %.0fs: %s", decision_id, delay, exc)
        observe.writeback_retry(decision)
        publish(document.topic, document.version)
        return delay
    _finish_writeback(decision, Decision.Writeback.DONE, erp_reference=result.erp_reference)
    return None


def _finish_writeback(
    decision: Decision,
    status: str,
    *,
    error: str = "",
    erp_reference: str = "",
    conflict: DecisionConflict | None = None,
) -> None:
    with transaction.atomic():
        updated = Decision.objects.filter(pk=decision.pk, writeback_status=Decision.Writeback.PENDING).update(
            writeback_status=status,
            writeback_error=error,
            writeback_next_at=None,
            erp_reference=erp_reference,
            written_back_at=timezone.now() if status == Decision.Writeback.DONE else None,
        )
        if not updated:
            return
        observe.writeback_finished(decision, status)
        document = ApprovalDocument.objects.select_for_update().get(pk=decision.document_id)
        if conflict is not None:
            # The ERP is the system of record: show its decision, keep ours visible as a conflict.
            document.status = conflict.outcome
            document.decided_by_name = conflict.decided_by
            document.decided_at = conflict.decided_at or timezone.now()
        document.version += 1
        document.save()
        HistoryEntry.objects.create(
            document=document,
            action=f"writeback_{status}",
            note=error or erp_reference,
        )
        _announce(document)


def retry_writeback(decision: Decision) -> None:
    """Admin action: try a failed writeback again."""
    Decision.objects.filter(pk=decision.pk, writeback_status=Decision.Writeback.FAILED).update(
        writeback_status=Decision.Writeback.PENDING, writeback_attempts=0, writeback_error=""
    )
    queue_after_commit(write_back_task(), decision.pk)


def hand_over_documents(user: Any, connector, erp_login: str) -> None:
    """A portal user was linked to an ERP login (``sso.services.link_erp_login``): the documents already
    waiting for that login, or requested by it, are theirs now. Registered in ``ApprovalsConfig.ready``."""
    ApprovalAssignment.objects.filter(document__connector=connector, erp_login=erp_login, user=None).update(
        user=user
    )
    ApprovalDocument.objects.filter(connector=connector, requester_login=erp_login, requester=None).update(
        requester=user
    )
