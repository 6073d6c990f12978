"""Actions taken from a board on ERP objects, through the connector's declared capabilities.

Each action: the rule must allow it for the viewer's side (members, guests), the viewer's own
permission is asked (members: ``authorize()``; a guest only ever acts on their own supplier's lines
of the group's item), the ERP applies it once (idempotency key) or refuses it as stale with what
changed, and the outcome is recorded (``BoardActivity`` and the audit chain) and pushed to every open
board of the group."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from boards.access import Viewer
from boards.models import BoardActivity
from boards.selectors import allowed_actions, claim_subject, erp_of, stock_subject, topic_of
from erp.connectors.base import (
    CONFIRM_DELIVERY,
    EXPEDITE_ORDER,
    PURCHASE_ORDERS,
    ConnectorError,
    LineConfirmation,
    PurchaseOrderLine,
    StaleObject,
    supports,
)
from im.cards import Card, CardField
from notifications.models import ChatGroup
from sso.authz import authorize
from widgets.live import publish
from widgets.topics import version_of

logger = logging.getLogger(__name__)

FIELD_LABELS = {"qty": "quantity", "promised_date": "promised date", "confirmed_date": "confirmed date",
                "confirmed_qty": "confirmed quantity", "status": "status", "amount": "amount"}


def _num(value: Decimal) -> str:
    """10.00 → "10", 2.50 → "2.5" (``normalize()`` alone would say "1E+1")."""
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    status: int = 200  # the HTTP status a page answers with


# How far from today a confirmed delivery date may be: a late confirmation of a past delivery, or a
# long lead time, but not a year's typo.
DELIVERY_DATE_PAST = dt.timedelta(days=366)
DELIVERY_DATE_AHEAD = dt.timedelta(days=730)


def _record(viewer: Viewer, group: ChatGroup, action: str, object_ref: str, outcome: str, detail: str,
            *, key: str = "") -> BoardActivity:
    """Record an action once: a repeat of the same form (a double tap, a retried POST) carries the same
    ``key`` and finds the first record instead of writing, auditing and pushing a second one."""
    from trust.services import record

    fields = {"actor": viewer.user, "guest": viewer.guest, "actor_name": viewer.name[:150], "action": action,
              "object_ref": object_ref[:100], "outcome": outcome, "detail": detail}
    if not key:
        activity = BoardActivity.objects.create(group=group, **fields)
    else:
        # Scoped by who acts: another member's form key never stands for theirs.
        who = f"user{viewer.user.pk}" if viewer.user else f"guest{viewer.guest.pk}"
        activity, created = BoardActivity.objects.get_or_create(
            group=group, key=f"{action}:{who}:{key}"[:200], defaults=fields)
        if not created:
            return activity
    record(f"board.{action}", actor=viewer.user,
           actor_name=None if viewer.user else f"guest:{viewer.guest.email}",
           object_type="notifications.ChatGroup", object_id=str(group.pk),
           summary={"object": object_ref, "outcome": outcome, "guest_pass": viewer.guest.pk if viewer.guest else None})
    publish(topic_of(group), version_of(timezone.now()))
    return activity


def _refuse(viewer: Viewer, group: ChatGroup, action: str, object_ref: str, message: str, *, status: int = 403,
            outcome: str = BoardActivity.Outcome.REFUSED) -> Outcome:
    with transaction.atomic():
        _record(viewer, group, action, object_ref, outcome, message)
    return Outcome(False, message, status)


def _what_changed(seen: dict[str, str], now: dict[str, str]) -> str:
    changes = [f"{_(FIELD_LABELS.get(k, k))} {seen.get(k) or '—'} → {now[k] or '—'}"
               for k in now if k in seen and (seen.get(k) or "") != (now[k] or "")]
    return "; ".join(changes) or _("it was changed by someone else")


def _line_for(viewer: Viewer, group: ChatGroup, line_id: str) -> tuple[Any, PurchaseOrderLine | None, str]:
    """The ERP and the line if this viewer may act on it; else a refusal ("missing" and "not yours"
    read the same)."""
    level = stock_subject(group)
    if level is None:
        return None, None, _("This board has no purchase order lines.")
    erp = erp_of(level.connector)
    if not supports(erp, PURCHASE_ORDERS):
        return erp, None, _("This ERP does not support purchase order actions.")
    line = erp.purchase_order_line(line_id)
    if line is None or line.sku != level.sku:
        return erp, None, _("No such purchase order line on this board.")
    if viewer.is_guest:
        if line.supplier_email.lower() != viewer.guest.email.lower():
            return erp, None, _("No such purchase order line on this board.")
    elif not authorize(viewer.user, "inventory.view", level):
        return erp, None, _("No such purchase order line on this board.")
    return erp, line, ""


def confirm_delivery(viewer: Viewer, group: ChatGroup, line_id: str, *, delivery_date: str, quantity: str,
                     seen_version: str, seen: dict[str, str], key: str) -> Outcome:
    """The supplier (or a buyer on their behalf) confirms a delivery date and, optionally, a partial quantity."""
    action = "confirm_delivery"
    if action not in allowed_actions(viewer, group):
        return _refuse(viewer, group, action, f"line {line_id}", _("You may not confirm deliveries on this board."))
    erp, line, why = _line_for(viewer, group, line_id)
    if line is None:
        return _refuse(viewer, group, action, f"line {line_id}", why, status=404)
    ref = f"{line.order} {line.sku}"
    if not supports(erp, CONFIRM_DELIVERY):
        return _refuse(viewer, group, action, ref,
                       _("This ERP does not support confirming deliveries from the portal."), status=501,
                       outcome=BoardActivity.Outcome.UNSUPPORTED)
    try:
        date = dt.date.fromisoformat(delivery_date)
        qty = Decimal(quantity) if quantity.strip() else None
        version = int(seen_version)
        if qty is not None and not qty.is_finite():
            raise ValueError("NaN and Infinity parse as Decimals but are no quantity (NaN cannot be compared)")
    except (ValueError, InvalidOperation):
        return Outcome(False, _("Give a date (YYYY-MM-DD) and, for a partial delivery, a quantity."), 400)
    today = timezone.localdate()
    if not today - DELIVERY_DATE_PAST <= date <= today + DELIVERY_DATE_AHEAD:
        # A typo (2062, 2016) or a probe (9999-12-31) would otherwise be planned with in the ERP.
        return Outcome(False, _("Give a delivery date between %(first)s and %(last)s.") % {
            "first": today - DELIVERY_DATE_PAST, "last": today + DELIVERY_DATE_AHEAD}, 400)
    try:
        with transaction.atomic():
            result = erp.confirm_delivery(LineConfirmation(
                line_id=line.id, delivery_date=date, quantity=qty, expected_version=version,
                actor=viewer.name, idempotency_key=f"board:{group.pk}:{key}"[:200]))
            detail = _("%(ref)s: delivery on %(date)s, quantity %(qty)s") % {
                "ref": ref, "date": result.confirmed_date, "qty": _num(result.confirmed_qty or result.qty)}
            _record(viewer, group, action, ref, BoardActivity.Outcome.DONE, detail, key=key)
            _post_to_group(group, _("Delivery confirmed by %(name)s") % {"name": viewer.name},
                           [(_("Order"), line.order), (_("Item"), f"{line.sku} {line.name}"),
                            (_("Delivery date"), str(result.confirmed_date)),
                            (_("Quantity"), _num(result.confirmed_qty or result.qty))],
                           key=f"board{group.pk}:{key}")
    except StaleObject as exc:
        message = _("%(ref)s changed since you looked: %(what)s. Nothing was changed; check it and try again.") % {
            "ref": ref, "what": _what_changed(seen, exc.current.facts())}
        return _refuse(viewer, group, action, ref, message, status=409, outcome=BoardActivity.Outcome.STALE)
    except ConnectorError as exc:
        return _refuse(viewer, group, action, ref, _("The ERP refused: %s") % exc, status=422)
    return Outcome(True, detail)


def expedite(viewer: Viewer, group: ChatGroup, line_id: str, *, seen_version: str, seen: dict[str, str],
             key: str) -> Outcome:
    action = "expedite"
    if action not in allowed_actions(viewer, group):
        return _refuse(viewer, group, action, f"line {line_id}", _("You may not expedite orders on this board."))
    erp, line, why = _line_for(viewer, group, line_id)
    if line is None:
        return _refuse(viewer, group, action, f"line {line_id}", why, status=404)
    ref = f"{line.order} {line.sku}"
    if not supports(erp, EXPEDITE_ORDER):
        return _refuse(viewer, group, action, ref, _("This ERP does not support expediting orders from the portal."),
                       status=501, outcome=BoardActivity.Outcome.UNSUPPORTED)
    try:
        with transaction.atomic():
            erp.expedite_line(line.id, expected_version=int(seen_version or 0), actor=viewer.name,
                              idempotency_key=f"board:{group.pk}:{key}"[:200])
            detail = _("%(ref)s: the supplier is asked to deliver sooner") % {"ref": ref}
            _record(viewer, group, action, ref, BoardActivity.Outcome.DONE, detail, key=key)
            _post_to_group(group, _("Expedite requested by %(name)s") % {"name": viewer.name},
                           [(_("Order"), line.order), (_("Item"), f"{line.sku} {line.name}")],
                           key=f"board{group.pk}:{key}")
    except StaleObject as exc:
        message = _("%(ref)s changed since you looked: %(what)s. Nothing was changed; check it and try again.") % {
            "ref": ref, "what": _what_changed(seen, exc.current.facts())}
        return _refuse(viewer, group, action, ref, message, status=409, outcome=BoardActivity.Outcome.STALE)
    except (ConnectorError, ValueError) as exc:
        return _refuse(viewer, group, action, ref, _("The ERP refused: %s") % exc, status=422)
    return Outcome(True, detail)


def raise_requisition(viewer: Viewer, group: ChatGroup, suggestion_id: str) -> Outcome:
    """The buyer turns the item's restock suggestion into a purchase requisition in the ERP."""
    from foresight.models import RestockSuggestion
    from foresight.services import ActionRefused, create_requisition

    action = "raise_requisition"
    if viewer.is_guest or action not in allowed_actions(viewer, group):
        return _refuse(viewer, group, action, f"suggestion {suggestion_id}",
                       _("You may not raise requisitions on this board."))
    level = stock_subject(group)
    suggestion = RestockSuggestion.objects.filter(pk=int(suggestion_id) if suggestion_id.isdigit() else 0).first()
    if level is None or suggestion is None or suggestion.sku != level.sku:
        return _refuse(viewer, group, action, f"suggestion {suggestion_id}", _("No such suggestion on this board."),
                       status=404)
    try:
        number = create_requisition(suggestion.pk, viewer.user)
    except ActionRefused as exc:
        return _refuse(viewer, group, action, f"suggestion {suggestion.pk}",
                       _("The requisition was not created (%s).") % exc, status=409)
    with transaction.atomic():
        detail = _("purchase requisition %(number)s for %(qty)s × %(sku)s") % {
            "number": number, "qty": _num(suggestion.quantity), "sku": suggestion.sku}
        _record(viewer, group, action, number, BoardActivity.Outcome.DONE, detail)
        publish(f"item.{level.sku}", version_of(timezone.now()))  # the suggestion and requisitions sit there
    return Outcome(True, detail)


def ask_requester(viewer: Viewer, group: ChatGroup, text: str, *, key: str) -> Outcome:
    """A reviewer's question to the claim's requester, posted in the group they both are in."""
    action = "ask_requester"
    document = claim_subject(group)
    if viewer.is_guest or action not in allowed_actions(viewer, group) or document is None:
        return _refuse(viewer, group, action, "claim", _("You may not ask questions on this board."))
    if not authorize(viewer.user, "approvals.view", document):
        return _refuse(viewer, group, action, document.external_id, _("Not found."), status=404)
    text = (text or "").strip()
    if not text or len(text) > 1000:
        return Outcome(False, _("Write a question of at most 1000 characters."), 400)
    with transaction.atomic():
        requester = document.requester.get_full_name() if document.requester else document.requester_login
        activity = _record(viewer, group, action, document.external_id, BoardActivity.Outcome.DONE, text,
                           key=key)
        if document.requester is not None:
            from boards.cards import send_to_requester

            send_to_requester(activity, document.requester, group.platform)
        _post_to_group(group, _("%(asker)s asks %(requester)s") % {"asker": viewer.name, "requester": requester},
                       [(document.external_id, text)], key=f"board{group.pk}:{key}")
    return Outcome(True, _("Your question was posted in the group."))


def decide_claim(viewer: Viewer, group: ChatGroup, outcome: str, *, seen_version: str, seen: dict[str, str],
                 comment: str, key: str) -> Outcome:
    """A finance reviewer decides the claim from its board: ``decide()`` with its own checks."""
    from approvals.services import DecisionError, decide

    action = "decide_claim"
    document = claim_subject(group)
    if viewer.is_guest or action not in allowed_actions(viewer, group) or document is None:
        return _refuse(viewer, group, action, "claim", _("You may not decide claims on this board."))
    ref = document.external_id
    if not authorize(viewer.user, "approvals.view", document):
        return _refuse(viewer, group, action, ref, _("Not found."), status=404)
    if str(document.version) != str(seen_version):
        now = {"status": document.get_status_display(), "amount": f"{document.currency} {document.amount:,.2f}"}
        message = _("%(ref)s changed since you looked: %(what)s. Nothing was decided; check it and try again.") % {
            "ref": ref, "what": _what_changed(seen, now)}
        return _refuse(viewer, group, action, ref, message, status=409, outcome=BoardActivity.Outcome.STALE)
    from approvals.models import ApprovalDocument

    if outcome not in ApprovalDocument.Status.values:
        return Outcome(False, _("Approve or reject."), 400)
    detail = _("%(ref)s: %(status)s") % {"ref": ref, "status": ApprovalDocument.Status(outcome).label}
    try:
        # One transaction: the board's record commits with the decision (or not at all), and its push is
        # registered first, so open boards refetch while the writeback (after commit) is still running.
        with transaction.atomic():
            _record(viewer, group, action, ref, BoardActivity.Outcome.DONE, detail, key=key)
            decide(viewer.user, document.pk, outcome, comment=comment,
                   idempotency_key=f"board:{group.pk}:{key}"[:100], expected_version=document.version, via="board")
    except DecisionError as exc:
        return _refuse(viewer, group, action, ref, exc.message, status=exc.status)
    return Outcome(True, detail)


def _post_to_group(group: ChatGroup, title: str, fields: list[tuple[str, str]], *, key: str) -> None:
    """What was done, as a card in the chat itself (the platform's members see it there too)."""
    from django.conf import settings

    from notifications import groups

    with translation.override(settings.LANGUAGE_CODE):
        card = Card(topic=f"group.{group.pk}", title=title[:200], status="info", status_label="", link="",
                    link_label="", locale=translation.get_language(),
                    fields=[CardField(str(label), str(value)) for label, value in fields])
    groups._post(group, card, key=key, reason=_("board action"))
