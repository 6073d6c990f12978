"""The bot's approvals intents: my pending approvals, who has not approved a document yet, and approve/reject
(which only prepares a card with a confirm button; the decision itself is ``approvals.services.decide()``).
Registered with the bot in ``ApprovalsConfig.ready()`` (``register_bot_intents``)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from approvals.models import ApprovalDocument
from approvals.selectors import pending_page, visible_documents
from approvals.services import DecisionError, decide, describe_decision
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


def item_to_document(user: Any, entities: dict[str, Any]) -> dict[str, Any]:
    """"轴承的采购申请": the requisition that restocks that item, if it is the only one the asker sees."""
    if entities.get("sku") and "document" not in entities:
        docs = list(visible_documents(user).filter(lines__sku=entities["sku"]).distinct()
                    .values_list("external_id", flat=True)[:2])
        if len(docs) == 1:
            entities = {k: v for k, v in entities.items() if k != "sku"}
            entities["document"] = docs[0]
    return entities


def pending_action(user: Any, entities: dict[str, Any]) -> dict[str, Any] | None:
    """What the confirm button will decide: this document, at the version the asker saw."""
    doc = document(user, entities["document"])
    if doc is None:
        return None
    return {"document_id": doc.pk, "outcome": entities["outcome"], "comment": entities.get("comment", ""),
            "version": doc.version}


def confirm(actor: Any, pending: dict[str, Any], idempotency_key: str) -> str:
    """The confirm button: through ``decide()``, as the page does."""
    from bot.intents import ActionRefused

    try:
        outcome = decide(
            actor, pending["document_id"], pending["outcome"], comment=pending.get("comment", ""),
            idempotency_key=idempotency_key, expected_version=pending.get("version"), via="bot",
        )
    except DecisionError as exc:
        raise ActionRefused(exc.message) from exc
    if outcome.replayed:
        return describe_decision(ApprovalDocument.objects.get(pk=pending["document_id"]))
    return _("Approved.") if pending["outcome"] == "approved" else _("Rejected.")


def clarify_decision(user: Any, parsed: Any, ctx: Context) -> Answer | None:
    """A decision aimed at no document ("approve", "approve all"): which one?"""
    if not (parsed.bare_decision or parsed.intent == "clarify" and not parsed.vague):
        return None
    page = pending_page(user, 5)
    fields = [CardField(d.external_id, d.title) for d in page.documents]
    note = _("Name one document, e.g. “批准 PR-2026-0042” or “reject EC-2026-0107 because …”. "
             "Several at once: the bulk approval page.")
    return Answer(_("Which document do you mean?"), fields=fields, note=note, status="clarify")


def register_bot_intents() -> None:
    from django.utils.translation import gettext_lazy

    from bot.intents import (
        Intent,
        Reference,
        register_clarifier,
        register_example,
        register_intent,
        register_names,
        register_reference,
    )

    register_intent(Intent("approvals.pending", pending_rows, visible, render_pending, frozenset()))
    register_intent(Intent("approvals.status", status_rows, visible, render_status,
                           frozenset({"document", "ref", "mine", "sku"}), resolve=item_to_document))
    register_intent(Intent("approvals.decide", decide_rows, visible, render_decide,
                           frozenset({"document", "outcome", "comment"}), personal=True,
                           remember_as="approvals.status", resolve=item_to_document,
                           pending_action=pending_action, confirm=confirm))
    register_reference(Reference(
        "document", lambda user: visible_documents(user).values_list("external_id", flat=True),
        intents=("approvals.status", "approvals.decide"), redirect="approvals.status"))
    register_names("project", ApprovalDocument,
                   lambda: ((p, p) for p in ApprovalDocument.objects.values_list("project", flat=True).distinct()),
                   lambda user, value: visible_documents(user).filter(project=value).exists())
    register_example(40, gettext_lazy("Approvals"),
                     gettext_lazy("“我的待审批”, “approve PR-2026-0042”, “批准 PR-2026-0042 同意”, "
                                  "“谁还没批 PR-2026-0042”"))
    register_clarifier(clarify_decision)
