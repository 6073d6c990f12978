"""Mini-app pages: thin views over selectors and services."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from approvals import selectors, services
from approvals.cards import format_amount
from approvals.models import ApprovalDocument, Decision
from sso import links
from sso.authz import authorize
from widgets.fragments import fragment_key, respond


@login_required
@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    context = {
        "pending": selectors.pending_page(request.user).documents,
        "recent": list(selectors.recent_for(request.user)),
    }
    template = "approvals/_list.html" if request.GET.get("partial") else "approvals/mine.html"
    return render(request, template, context)


def _decision_of(document: ApprovalDocument) -> Decision | None:
    return Decision.objects.filter(document=document, step=document.step).first()


def _shown_state(document: ApprovalDocument, decision: Decision | None) -> tuple:
    """What a document's status panels show of it: every change to these changes the page."""
    return (document.pk, document.version, document.updated_at,
            decision and (decision.pk, decision.writeback_status, decision.writeback_error))


def _panel_context(request: HttpRequest, document: ApprovalDocument, error: str = "") -> dict:
    decision = _decision_of(document)
    pending = document.status == ApprovalDocument.Status.PENDING
    prefetch_related_objects([document], "history")
    context = {
        "document": document,
        "amount": format_amount(document.amount, document.currency),
        "decision": decision,
        "may_decide": pending and authorize(request.user, "approvals.decide", document).allowed,
        # Opened from a card link: what deciding still needs ("", "password" or "signin").
        "link_check": links.decision_check(request),
        "decided_text": "" if pending else services.describe_decision(document),
        # One key per rendered form: a double tap or a resubmitted form makes one decision.
        "idempotency_key": uuid.uuid4().hex,
        "error": error,
    }
    # A page that shows this already keeps its form (and that form's idempotency key): history can
    # grow without a new version ("the ERP asked again"), so its entries are part of what is shown.
    context["fragment_key"] = fragment_key(
        "panel", _shown_state(document, decision), [entry.pk for entry in document.history.all()],
        [a.name for a in document.assignments.all()], request.user.pk, context["may_decide"],
        context["link_check"])
    return context


def _document_or_404(request: HttpRequest, pk: int) -> ApprovalDocument:
    document = selectors.document_for(request.user, pk)
    if document is None:
        raise Http404()
    return document


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = _document_or_404(request, pk)
    return render(request, "approvals/detail.html", _panel_context(request, document))


@login_required
@require_GET
def panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The live refetch of a document's panel: 304 when the page shows this state already."""
    document = _document_or_404(request, pk)
    context = _panel_context(request, document)
    key = context["fragment_key"]
    return respond(request, key, lambda: render_to_string("approvals/_panel.html", context, request))


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    version = request.POST.get("version", "")
    error = links.verify_decision(request) or ""
    try:
        if error:
            # A link session whose tapper has not proved to be the recipient: nothing is decided.
            raise services.DecisionError(error)
        services.decide(
            request.user,
            pk,
            request.POST.get("outcome", ""),
            comment=request.POST.get("comment", ""),
            idempotency_key=request.POST.get("idempotency_key", ""),
            expected_version=int(version) if version.isdigit() else None,
            via="page",
        )
    except services.NotFoundOrForbidden as exc:
        raise Http404() from exc
    except services.DecisionError as exc:
        error = exc.message
    document = _document_or_404(request, pk)
    if not request.headers.get("HX-Request"):
        if error:
            messages.error(request, error)
        return redirect(document)
    return render(request, "approvals/_panel.html", _panel_context(request, document, error))


def panel_context(user, pk: int) -> dict | None:
    """The approval status a widget shows (read-only), or None when ``user`` may not see it."""
    document = selectors.document_for(user, pk)
    if document is None:
        return None
    pending = document.status == ApprovalDocument.Status.PENDING
    decision = _decision_of(document)
    return {
        "document": document,
        "amount": format_amount(document.amount, document.currency),
        "decision": decision,
        "decided_text": "" if pending else services.describe_decision(document),
        # The same for every viewer allowed to see it: read-only, no history, no names.
        "fragment_key": repr(_shown_state(document, decision)),
    }
