"""The IM card of an approval document, built for one recipient when it is sent or edited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument
from approvals.services import DecisionError, decide, describe_decision
from im.cards import Card, CardAction, CardField
from portal import formatting
from sso.authz import authorize
from sso.models import language_of, time_zone_of
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


def format_amount(amount, currency: str) -> str:
    """The amount in the active language's format (one format everywhere: ``portal.formatting``)."""
    return formatting.money(amount, currency)


def build(topic: str, recipient: Any) -> Card | None:
    document = _document(topic)
    if document is None:
        return None
    if not authorize(recipient, "approvals.view", document):
        # The ERP routed it to them but no rule lets them see it: a notice without the data, so
        # they know to ask an admin, or nothing at all (settings.APPROVAL_CARD_NOTICE_WITHOUT_ACCESS).
        if settings.APPROVAL_CARD_NOTICE_WITHOUT_ACCESS and document.assignments.filter(user=recipient).exists():
            return _notice(topic, recipient)
        return None
    with translation.override(language_of(recipient)), timezone.override(time_zone_of(recipient)):
        pending = document.status == ApprovalDocument.Status.PENDING
        may_decide = pending and authorize(recipient, "approvals.decide", document).allowed
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
        what = {"number": document.external_id, "amount": format_amount(document.amount, document.currency)}
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
            link=make_link_url(recipient, document.get_absolute_url()),
            link_label=_("Open"),
            locale=translation.get_language(),
            amount=format_amount(document.amount, document.currency),
            fields=fields,
            actions=actions,
        )


def _notice(topic: str, recipient: Any) -> Card:
    with translation.override(language_of(recipient)):
        return Card(
            topic=topic,
            title=_("A request is waiting for you"),
            status="no_access",
            status_label=_("You may not view it in the portal. Ask your administrator for access."),
            link="",
            link_label="",
            locale=translation.get_language(),
        )


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
