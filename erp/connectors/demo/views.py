"""The demo ERP's own small console (staff only): act in the ERP and watch the portal react."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from erp.intake import IntakeError

from . import services
from .connector import find_document
from .emitter import quantity
from .models import ApprovalDocument, DocumentState, ExpenseClaim, PurchaseRequisition, SalesOrder, Stock

STOCK_STEP = Decimal(5)
T = TypeVar("T")


def _demo_enabled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A production portal talks to a real ERP: the demo console exists only when enabled."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not getattr(settings, "DEMO_ERP_ENABLED", False):
            raise Http404("demo ERP disabled")
        return view(request, *args, **kwargs)

    return wrapped


def _run(request: HttpRequest, action: Callable[[], T], success: Callable[[T], str]) -> HttpResponse:
    """Do one ERP action and report it; never a 500 for a refused event or a refused action."""
    try:
        result = action()
    except ValueError as exc:
        messages.error(request, str(exc))
    except IntakeError as exc:
        # The ERP change is saved (a real ERP saves before it fires the webhook); only the event
        # was refused.
        messages.error(
            request,
            _("Saved in the ERP, but the portal refused its event (%(status)s %(title)s): %(detail)s")
            % {"status": exc.status, "title": exc.title, "detail": exc.detail},
        )
    else:
        messages.success(request, success(result))
    return redirect("demo_erp:console")


@_demo_enabled
@staff_member_required
def console(request: HttpRequest) -> HttpResponse:
    requisitions = PurchaseRequisition.objects.select_related("project").prefetch_related("lines")
    claims = ExpenseClaim.objects.select_related("project")
    stock = Stock.objects.select_related("item", "warehouse")
    orders = SalesOrder.objects.select_related("customer")
    return render(
        request,
        "demo_erp/console.html",
        {
            "requisitions": requisitions,
            "claims": claims,
            "stock": stock,
            "orders": orders,
            "order_statuses": SalesOrder.Status.choices,
            "waiting": DocumentState.WAITING,
            "stock_step": STOCK_STEP,
        },
    )


@_demo_enabled
@staff_member_required
@require_POST
def new_requisition(request: HttpRequest) -> HttpResponse:
    return _run(
        request,
        services.create_urgent_requisition,
        lambda pr: (
            _("Urgent purchase requisition %(number)s created and sent to the portal.")
            % {"number": pr.number}
        ),
    )


@_demo_enabled
@staff_member_required
@require_POST
def new_expense_claim(request: HttpRequest) -> HttpResponse:
    return _run(
        request,
        services.create_expense_claim,
        lambda claim: (
            _("Expense claim %(number)s (%(amount)s) created and sent to the portal.")
            % {"number": claim.number, "amount": f"{claim.currency} {claim.amount:,.2f}"}
        ),
    )


@_demo_enabled
@staff_member_required
@require_POST
def decide(request: HttpRequest, number: str) -> HttpResponse:
    outcome = request.POST.get("outcome", "")
    comment = request.POST.get("comment", "").strip()

    def action() -> ApprovalDocument:
        document = find_document(number)
        if document is None:
            raise ValueError(_("The demo ERP has no document %(number)s.") % {"number": number})
        # The console acts as the document's first approver, deciding "in the ERP".
        actor = document.approvers[0] if document.approvers else ""
        return services.decide_in_erp(number, outcome, actor, comment or _("Decided in the ERP console."))

    def success(document: ApprovalDocument) -> str:
        if document.state == DocumentState.APPROVED:
            return _("%(number)s approved in the ERP by %(login)s.") % {
                "number": number,
                "login": document.decided_by,
            }
        return _("%(number)s rejected in the ERP by %(login)s.") % {
            "number": number,
            "login": document.decided_by,
        }

    return _run(request, action, success)


@_demo_enabled
@staff_member_required
@require_POST
def resend(request: HttpRequest, number: str) -> HttpResponse:
    return _run(
        request,
        lambda: services.resend_approval_requested(number),
        lambda _doc: _("Approval request for %(number)s sent again.") % {"number": number},
    )


@_demo_enabled
@staff_member_required
@require_POST
def adjust_stock(request: HttpRequest, pk: int) -> HttpResponse:
    stock = Stock.objects.select_related("item", "warehouse").filter(pk=pk).first()
    if stock is None:
        raise Http404("no such stock level")
    delta = STOCK_STEP if request.POST.get("direction") == "up" else -STOCK_STEP
    return _run(
        request,
        lambda: services.adjust_stock(stock.item.sku, stock.warehouse.code, delta),
        lambda updated: (
            _("Stock of %(sku)s in %(warehouse)s is now %(quantity)s %(unit)s.")
            % {
                "sku": updated.item.sku,
                "warehouse": updated.warehouse.name,
                "quantity": quantity(updated.quantity),
                "unit": updated.item.unit,
            }
        ),
    )


@_demo_enabled
@staff_member_required
@require_POST
def order_status(request: HttpRequest, number: str) -> HttpResponse:
    status = request.POST.get("status", "")
    return _run(
        request,
        lambda: services.set_order_status(number, status),
        lambda order: (
            _("Sales order %(number)s is now %(status)s.")
            % {"number": order.number, "status": order.get_status_display()}
        ),
    )
