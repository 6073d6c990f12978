"""The demo ERP's own small console (staff only): act in the ERP and watch the portal react.

One section at a time (requisitions, expense claims, stock, orders), searched and paged, so the page
stays short with two years of seeded history; with htmx (vendored) a section, a search, a page or an
action swaps only the section, and without JavaScript every form and link still works as a page."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from erp.intake import IntakeError
from portal import formatting

from . import services
from .connector import find_document
from .emitter import quantity
from .models import ApprovalDocument, DocumentState, ExpenseClaim, PurchaseRequisition, SalesOrder, Stock

STOCK_STEP = Decimal(5)
PAGE_SIZE = 20
SECTIONS = ["requisitions", "claims", "stock", "orders"]
SECTION_LABELS = {
    "requisitions": _lazy("Purchase requisitions"),
    "claims": _lazy("Expense claims"),
    "stock": _lazy("Stock"),
    "orders": _lazy("Sales orders"),
}
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
    section = _section_of(request.POST.get("section") or request.GET.get("section"))
    if request.headers.get("HX-Request"):
        return _render_section(request, section, with_messages=True)
    return redirect(f"{reverse('demo_erp:console')}?{urlencode({'section': section})}")


def _section_of(value: str | None) -> str:
    return value if value in SECTIONS else SECTIONS[0]


def _documents(queryset: QuerySet, query: str) -> QuerySet:
    if query:
        queryset = queryset.filter(Q(number__icontains=query) | Q(title__icontains=query)
                                   | Q(requester__icontains=query) | Q(project__name__icontains=query))
    # Waiting documents first: those are the ones the console is for.
    waiting_first = Case(When(state=DocumentState.WAITING, then=Value(0)), default=Value(1),
                         output_field=IntegerField())
    return queryset.annotate(waiting_first=waiting_first).order_by("waiting_first", "-number")


def _section_rows(section: str, query: str) -> QuerySet:
    if section == "requisitions":
        return _documents(PurchaseRequisition.objects.select_related("project"), query)
    if section == "claims":
        return _documents(ExpenseClaim.objects.select_related("project"), query)
    if section == "stock":
        rows = Stock.objects.select_related("item", "warehouse")
        if query:
            rows = rows.filter(Q(item__sku__icontains=query) | Q(item__name__icontains=query)
                               | Q(warehouse__name__icontains=query) | Q(warehouse__code__icontains=query))
        return rows
    rows = SalesOrder.objects.select_related("customer")
    if query:
        rows = rows.filter(Q(number__icontains=query) | Q(customer__name__icontains=query)
                           | Q(sales_rep__icontains=query))
    return rows


def _section_context(request: HttpRequest, section: str) -> dict:
    params = request.POST if request.method == "POST" else request.GET
    query = (params.get("q") or "").strip()[:100]
    page = Paginator(_section_rows(section, query), PAGE_SIZE).get_page(params.get("page"))
    return {
        "section": section,
        "sections": [(name, SECTION_LABELS[name]) for name in SECTIONS],
        "q": query,
        "page": page,
        "rows": page.object_list,
        "order_statuses": SalesOrder.Status.choices,
        "waiting": DocumentState.WAITING,
        "stock_step": STOCK_STEP,
    }


def _render_section(request: HttpRequest, section: str, *, with_messages: bool = False) -> HttpResponse:
    context = {**_section_context(request, section), "with_messages": with_messages}
    return render(request, "demo_erp/_section.html", context)


@_demo_enabled
@staff_member_required
def console(request: HttpRequest) -> HttpResponse:
    section = _section_of(request.GET.get("section"))
    if request.headers.get("HX-Request"):
        return _render_section(request, section)
    return render(request, "demo_erp/console.html", _section_context(request, section))


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
            % {"number": claim.number, "amount": formatting.money(claim.amount, claim.currency)}
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
