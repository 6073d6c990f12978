"""Approvals: my pending approvals, who has not approved a document yet, and approve/reject (which
only prepares a card with a confirm button; the decision itself is ``approvals.services.decide()``)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument
from approvals.selectors import pending_page, visible_documents
from approvals.services import describe_decision
from bot.answers.base import Answer, Context, money, widget_path
from im.cards import CardAction, CardField
from sso.authz import authorize
from sso.models import ErpIdentity, display_name

LIMIT = 10


def visible(member: Any, found: list[ApprovalDocument]) -> set[int]:
    return set(visible_documents(member).filter(pk__in=[d.pk for d in found]).values_list("pk", flat=True))


def document(user: Any, number: str) -> ApprovalDocument | None:
    """The document if ``user`` may see it; None for "missing" and "not yours" alike."""
    return visible_documents(user).filter(external_id=number).select_related("connector").first()


def _not_found(number: str) -> Answer:
    # Word for word the same whether the document is missing or hidden from the asker.
    return Answer(_("Document %(number)s") % {"number": number},
                  note=_("No such document that you may see."), status="empty")


# --- my pending approvals ---------------------------------------------------------------------

def pending_rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[ApprovalDocument]:
    page = pending_page(user, LIMIT)
    ctx.total = page.total
    return page.documents


def render_pending(found: list[ApprovalDocument], entities: dict[str, Any], ctx: Context) -> Answer:
    title = _("Waiting for your decision")
    if not found:
        return Answer(title, note=_("Nothing is waiting for your decision."), status="empty",
                      link=widget_path("pending"))
    fields = [CardField(d.external_id, f"{d.title} · {money(d.amount, d.currency, ctx)}"
                        + (" · " + _("Urgent") if d.urgent else "")) for d in found]
    total = max(ctx.total or 0, len(found))
    amount = (_("%(shown)s of %(total)s waiting") % {"shown": len(found), "total": total} if total > len(found)
              else _("%(count)s waiting") % {"count": len(found)})
    return Answer(title, fields=fields, amount=amount, link=widget_path("pending"))


# --- who has not approved yet -----------------------------------------------------------------

def status_rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[ApprovalDocument]:
    if entities.get("document") or entities.get("outcome"):
        found = document(user, entities.get("document", ""))
        return [found] if found else []
    # "my purchase requests", "requisitions for bearings", "采购申请": a list of what the asker may see.
    queryset = visible_documents(user)
    if entities.get("mine"):
        logins = list(ErpIdentity.objects.filter(user=user).values_list("erp_login", flat=True))
        queryset = queryset.filter(requester_login__in=logins)
    if entities.get("sku"):
        queryset = queryset.filter(lines__sku=entities["sku"]).distinct()
    return list(queryset.order_by("-created_at")[:LIMIT])


def _state(doc: ApprovalDocument) -> str:
    return _("Waiting for a decision") if doc.status == ApprovalDocument.Status.PENDING else describe_decision(doc)


def render_status(found: list[ApprovalDocument], entities: dict[str, Any], ctx: Context) -> Answer:
    if not entities.get("document"):
        title = _("My requisitions and claims") if entities.get("mine") else _("Requisitions and claims")
        if not found:
            return Answer(title, note=_("No documents found that you may see."), status="empty")
        fields = [CardField(d.external_id, f"{d.title} · {money(d.amount, d.currency, ctx)} · {_state(d)}")
                  for d in found]
        return Answer(title, fields=fields, link=widget_path("pending"))
    if not found:
        return _not_found(entities.get("document", ""))
    doc = found[0]
    fields = [CardField(_("Title"), doc.title)]
    if doc.status == ApprovalDocument.Status.PENDING:
        waiting = [display_name(a.user) if a.user else a.erp_login for a in doc.assignments.all()]
        fields.append(CardField(_("Not approved yet"), ", ".join(waiting) or "—"))
        state = _("Waiting for a decision")
    else:
        state = describe_decision(doc)
    fields.append(CardField(_("Status"), state))
    return Answer(_("Document %(number)s") % {"number": doc.external_id}, fields=fields,
                  amount=money(doc.amount, doc.currency, ctx), link=widget_path("approval", doc.pk) or
                  doc.get_absolute_url(), status=doc.status)


# --- approve / reject: a card to confirm ---------------------------------------------------------

def decide_rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[ApprovalDocument]:
    return status_rows(user, entities, ctx)


def render_decide(found: list[ApprovalDocument], entities: dict[str, Any], ctx: Context) -> Answer:
    if not found:
        return _not_found(entities.get("document", ""))
    doc = found[0]
    approve = entities.get("outcome") == "approved"
    fields = [CardField(_("Title"), doc.title), CardField(_("Requester"), doc.requester_login)]
    # Exactly what will be written to the ERP: the outcome and the marked comment, nothing else.
    written = _("Approve") if approve else _("Reject")
    comment = entities.get("comment", "")
    written += " · " + (_("comment “%(comment)s”") % {"comment": comment} if comment else _("no comment"))
    fields.append(CardField(_("Written to the ERP"), written))
    title = (_("Approve %(number)s?") if approve else _("Reject %(number)s?")) % {"number": doc.external_id}
    amount = money(doc.amount, doc.currency, ctx)
    link = doc.get_absolute_url()
    if doc.status != ApprovalDocument.Status.PENDING:
        return Answer(title, fields=fields, amount=amount, note=describe_decision(doc), status=doc.status, link=link)
    verdict = authorize(ctx.user, "approvals.decide", doc)
    if not verdict:
        # They may see it (else we would not be here), so saying why they cannot decide leaks nothing.
        return Answer(title, fields=fields, amount=amount, note=verdict.reason, status="refused", link=link)
    action = CardAction("confirm", _("Confirm approval") if approve else _("Confirm rejection"),
                        "primary" if approve else "danger")
    return Answer(title, fields=fields, amount=amount, status="confirm", link=link,
                  note=_("Nothing is decided until you press the button."),
                  actions=[action, CardAction("cancel", _("Cancel"))])
