"""The IM card of an approval document, built for one recipient when it is sent or edited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from approvals.held import held
from approvals.models import ApprovalAssignment, ApprovalDocument
from approvals.services import DecisionError, decide, describe_decision
from im.cards import Card, CardAction, CardField, no_access_card
from portal import formatting
from sso.authz import authorize_many
from sso.models import language_of, time_zone_of
from sso.permissions import read_once
from sso.tokens import make_link_url

KIND_LABELS = {
    "purchase_requisition": "Purchase requisition",
    "expense_claim": "Expense claim",
}


# Other apps add fields to every approval card (foresight: the flag of an unusual expense claim).
# Each callable gets the document, is called in the recipient's language, and returns CardFields.
_extra_fields: list[Callable[[ApprovalDocument], list[CardField]]] = []


def register_card_fields(source: Callable[[ApprovalDocument], list[CardField]]) -> None:
    if source not in _extra_fields:
        _extra_fields.append(source)


def _document(topic: str) -> ApprovalDocument | None:
    _kind, _, ident = topic.partition(".")
    return ApprovalDocument.objects.filter(pk=int(ident)).first() if ident.isdigit() else None


def _documents(topics: set[str]) -> dict[str, ApprovalDocument]:
    """The documents of ``topics`` with their approvers (for authorize() pair by pair): those the current
    handling batch wrote as it wrote them, the others in two queries."""
    ids = {topic: int(ident) for topic in topics if (ident := topic.partition(".")[2]).isdigit()}
    found = held(ids.values())  # written by the handling batch whose cards these are (approvals/held.py)
    if missing := set(ids.values()) - found.keys():
        found |= (ApprovalDocument.objects.filter(pk__in=missing).select_related("requester")
                  .prefetch_related("assignments").in_bulk())
    return {topic: found[pk] for topic, pk in ids.items() if pk in found}


def format_amount(amount, currency: str) -> str:
    """The amount in the active language's format (one format everywhere: ``portal.formatting``)."""
    return formatting.money(amount, currency)


def build(topic: str, recipient: Any) -> Card | None:
    """The card of one document for one recipient (``build_many`` of one)."""
    return build_many([(topic, recipient)])[0]


def build_many(wanted: list[tuple[str, Any]]) -> list[Card | None]:
    """The card of each ``(topic, recipient)``, in order; None for a recipient who may see nothing.

    The documents are read once; who may view and who may decide which document is decided for the
    whole batch at once (``authorize_many``, the same verdict as ``authorize()``); each card is rendered
    once per (document version, language, time zone, whether the viewer may decide) and reused for
    every recipient with the same key; only the link (a token bound to the recipient) is theirs.
    """
    documents = _documents({topic for topic, _recipient in wanted})
    recipients = [recipient for _topic, recipient in wanted if recipient is not None]
    pairs = [(recipient, documents[topic]) for topic, recipient in wanted
             if recipient is not None and topic in documents]
    with read_once(recipients):
        viewers = authorize_many(recipients, "approvals.view", documents.values(), asked=pairs)
        pending = [d for d in documents.values() if d.status == ApprovalDocument.Status.PENDING]
        deciders = authorize_many(recipients, "approvals.decide", pending, asked=[
            (recipient, document) for recipient, document in pairs
            if document.status == ApprovalDocument.Status.PENDING]) if pending else set()
    assigned = _assigned_without_access(wanted, documents, viewers)
    rendered: dict[tuple, Card] = {}
    cards: list[Card | None] = []
    for topic, recipient in wanted:
        document = documents.get(topic)
        if document is None or recipient is None:
            cards.append(None)
            continue
        pair = (recipient.pk, document.pk)
        if pair not in viewers:
            # The ERP routed it to them but no rule lets them see it: a notice without the data, so
            # they know to ask an admin, or nothing at all (settings.APPROVAL_CARD_NOTICE_WITHOUT_ACCESS).
            cards.append(_notice(topic, recipient) if pair in assigned else None)
            continue
        key = (document.pk, document.version, language_of(recipient), time_zone_of(recipient), pair in deciders)
        card = rendered.get(key)
        if card is None:
            card = rendered[key] = _render(topic, document, *key[2:])
        cards.append(replace(card, link=make_link_url(recipient, document.get_absolute_url())))
    return cards


def _assigned_without_access(wanted: list[tuple[str, Any]], documents: dict[str, ApprovalDocument],
                             viewers: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """(user pk, document pk) of the refused recipients the ERP named as approvers (one query)."""
    if not settings.APPROVAL_CARD_NOTICE_WITHOUT_ACCESS:
        return set()
    refused = {(recipient.pk, documents[topic].pk) for topic, recipient in wanted
               if recipient is not None and topic in documents} - viewers
    if not refused:
        return set()
    named = ApprovalAssignment.objects.filter(document_id__in={d for _u, d in refused},
                                              user_id__in={u for u, _d in refused})
    return {(user, document) for document, user in named.values_list("document_id", "user_id")} & refused


def _render(topic: str, document: ApprovalDocument, language: str, time_zone: str, may_decide: bool) -> Card:
    """The card as every viewer with this language, time zone and verdict sees it (no link yet)."""
    with translation.override(language), timezone.override(time_zone):
        pending = document.status == ApprovalDocument.Status.PENDING
        fields = [
            CardField(_("Number"), document.external_id),
            CardField(_("Requester"), document.requester_name),
        ]
        if document.project:
            fields.append(CardField(_("Project"), document.project))
        if document.urgent:
            fields.append(CardField(_("Priority"), _("Urgent: %(reason)s") % {"reason": document.urgent_reason}
                                    if document.urgent_reason else _("Urgent")))
        for source in _extra_fields:
            fields.extend(source(document))
        amount = format_amount(document.amount, document.currency)
        what = {"number": document.external_id, "amount": amount}
        actions = (
            [
                CardAction("approve", _("Approve"), "primary",
                           confirm=_("Approve %(number)s for %(amount)s?") % what),
                CardAction("reject", _("Reject"), "danger",
                           confirm=_("Reject %(number)s for %(amount)s?") % what),
            ]
            if may_decide
            else []
        )
        return Card(
            topic=topic,
            title=f"{_(KIND_LABELS.get(document.kind, document.kind))}: {document.title}",
            status=document.status,
            status_label=_("Waiting for your decision") if may_decide else (
                document.status_label if pending else describe_decision(document)
            ),
            link="",
            link_label=_("Open"),
            locale=translation.get_language(),
            amount=amount,
            fields=fields,
            actions=actions,
        )


def _notice(topic: str, recipient: Any) -> Card:
    with translation.override(language_of(recipient)):
        return no_access_card(topic, _("A request is waiting for you"))


def handle_action(topic: str, actor: Any, action_id: str, idempotency_key: str) -> str:
    """A card button: the same ``decide()`` and ``authorize()`` as the page."""
    document = _document(topic)
    outcome = {"approve": "approved", "reject": "rejected"}.get(action_id)
    if document is None or outcome is None:
        return _("This action is no longer available.")
    with translation.override(language_of(actor)), timezone.override(time_zone_of(actor)):
        try:
            result = decide(actor, document.pk, outcome, idempotency_key=idempotency_key, via="card")
        except DecisionError as exc:
            return exc.message
        document.refresh_from_db()
        return describe_decision(document) if result.replayed else (
            _("Approved.") if outcome == "approved" else _("Rejected.")
        )
