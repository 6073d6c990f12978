"""Cards of foresight (topics ``restock.<pk>``, ``riskalert.<pk>``, ``riskdigest.<connector pk>``) and the
flag it adds to expense claims' approval cards. Built per recipient at send time, each asking
``authorize()`` again; explanations are put into words here, in the recipient's language."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from foresight.models import ExpenseScore, ReceivableRisk, RestockSuggestion
from im.cards import Card, CardAction, CardField
from portal import formatting
from sso.authz import authorize, restrict
from sso.models import language_of, time_zone_of

METHOD_LABELS = {"snaive": gettext_noop("Same week last year"),
                 "ets": gettext_noop("Exponential smoothing (damped trend)"),
                 "sarima": gettext_noop("SARIMA on last year's pattern")}


def _ident(topic: str) -> int | None:
    _kind, _sep, ident = topic.partition(".")
    return int(ident) if ident.isdigit() else None


def _qty(value: Any) -> str:
    number = float(value)
    return formatting.number(round(number), decimals=0) if abs(number - round(number)) < 1e-9 else formatting.number(
        round(number, 1), decimals=1)


def _money(amount: Any, currency: str) -> str:
    return formatting.money(amount, currency)


def _pct(p: float) -> str:
    return f"{p * 100:.0f}%"


# --- restock -------------------------------------------------------------------------------------


def build_restock(topic: str, recipient: Any) -> Card | None:
    ident = _ident(topic)
    s = RestockSuggestion.objects.select_related("run").filter(pk=ident).first() if ident else None
    if s is None or not authorize(recipient, "inventory.view", s):
        return None
    with translation.override(language_of(recipient)), timezone.override(time_zone_of(recipient)):
        status_label = {
            RestockSuggestion.Status.OPEN: _("Restock suggested"),
            RestockSuggestion.Status.REQUISITIONED: _("Requisition %(number)s created") % {
                "number": s.requisition_number},
            RestockSuggestion.Status.DISMISSED: _("Dismissed"),
            RestockSuggestion.Status.RESOLVED: _("No longer needed"),
        }[s.status]
        actions = []
        if s.status == RestockSuggestion.Status.OPEN:
            if authorize(recipient, "foresight.requisition", s):
                actions.append(CardAction("requisition", _("Create purchase requisition"), "primary"))
            actions.append(CardAction("dismiss", _("Dismiss")))
        lead_weeks = s.lead_time_days / 7
        note = _(
            "Forecast demand over the supplier's lead time (%(days)s days): %(demand)s %(unit)s. A %(level)s "
            "service level needs %(safety)s %(unit)s of safety stock, so the reorder point is %(rop)s %(unit)s "
            "(the ERP's fixed one: %(erp)s). Available plus on order is %(position)s %(unit)s: order %(qty)s "
            "%(unit)s to cover the lead time and %(review)s more weeks. Forecast: %(method)s, chosen because it "
            "erred least in the backtest."
        ) % {
            "days": s.lead_time_days, "demand": _qty(round(s.lead_time_demand)), "unit": s.unit,
            "level": _pct(s.service_level), "safety": _qty(math.ceil(s.safety_stock)), "rop": _qty(s.reorder_point),
            "erp": _qty(s.erp_reorder_point), "position": _qty(s.position), "qty": _qty(s.quantity),
            "review": _qty(settings.FORESIGHT_REVIEW_WEEKS), "method": _(METHOD_LABELS.get(s.method, s.method)),
        }
        fields = [
            CardField(_("SKU"), s.sku),
            CardField(_("Warehouse"), s.warehouse_name or s.warehouse),
            CardField(_("Available + on order"), f"{_qty(s.position)} {s.unit}"),
            CardField(_("Reorder point"), f"{_qty(s.reorder_point)} {s.unit}"),
            CardField(_("Suggested quantity"), f"{_qty(s.quantity)} {s.unit}"),
            CardField(_("Days of cover"), _qty(round(s.days_of_cover)) if s.days_of_cover < 9999 else "—"),
            CardField(_("Supplier"), _("%(name)s, %(days)s days") % {"name": s.supplier, "days": s.lead_time_days}),
            CardField(_("Forecast, next weeks"), " · ".join(_qty(round(v)) for v in s.weekly_forecast[:max(
                math.ceil(lead_weeks), 4)])),
            CardField(_("Model version"), s.run.version),
        ]
        return Card(
            topic=topic, title=_("Restock: %(name)s in %(warehouse)s") % {"name": s.name,
                                                                        "warehouse": s.warehouse_name or s.warehouse},
            status=s.status, status_label=status_label, link="", link_label="", locale=translation.get_language(),
            amount=_money(s.quantity * s.unit_price, s.currency), fields=fields, actions=actions, note=note,
        )


REFUSALS = {
    "missing": gettext_noop("This action is no longer available."),
    "closed": gettext_noop("This suggestion is already closed."),
    "forbidden": gettext_noop("You may not create purchase requisitions."),
    "unsupported": gettext_noop("Your ERP account cannot create requisitions here."),
    "erp": gettext_noop("The ERP did not accept the requisition; try again later."),
}


def handle_restock_action(topic: str, actor: Any, action_id: str, idempotency_key: str) -> str:
    from foresight import services  # (numpy and the models load only where a button is pressed)

    ident = _ident(topic)
    with translation.override(language_of(actor)):
        if ident is None:
            return _(REFUSALS["missing"])
        try:
            if action_id == "requisition":
                number = services.create_requisition(ident, actor)
                return _("Requisition %(number)s created; it goes to approval.") % {"number": number}
            if action_id == "dismiss":
                services.dismiss("restock", ident, actor)
                return _("Dismissed. Thanks, this is kept as feedback.")
        except services.ActionRefused as exc:
            return _(REFUSALS.get(str(exc), REFUSALS["missing"]))
        return _(REFUSALS["missing"])


# --- receivables at risk ---------------------------------------------------------------------------


def describe_reason(reason: dict) -> str:
    """One reason of the credit model in plain words."""
    code, v = reason.get("code"), float(reason.get("value", 0))
    if code == "late_rate":
        return _("About %(pct)s of this customer's past invoices were paid late") % {"pct": _pct(v)}
    if code == "recent_late":
        return _("Recent invoices were often paid late (%(pct)s)") % {"pct": _pct(v)}
    if code == "avg_days_late":
        return _("Late payments came %(days)s days after the due date on average") % {"days": round(v)}
    if code == "amount_ratio":
        return _("The amount is %(times).1f times this customer's usual invoice") % {"times": math.exp(v)}
    if code == "terms":
        return _("Payment terms of %(days)s days") % {"days": round(v)}
    if code == "quarter_end":
        return _("Issued at the end of a quarter")
    if code == "open_overdue":
        return _("The customer has %(count)s overdue invoices open") % {"count": round(v)}
    if code == "history":
        return _("Little payment history with this customer (%(count)s invoices)") % {"count": round(math.expm1(v))}
    return str(code)


def build_risk_alert(topic: str, recipient: Any) -> Card | None:
    ident = _ident(topic)
    risk = ReceivableRisk.objects.select_related("run").filter(pk=ident).first() if ident else None
    if risk is None or not authorize(recipient, "receivables.view", risk):
        return None
    with translation.override(language_of(recipient)), timezone.override(time_zone_of(recipient)):
        reasons = [describe_reason(r) for r in risk.reasons]
        status_label = {
            ReceivableRisk.Status.OPEN: _("%(pct)s likely to be paid late") % {"pct": _pct(risk.probability)},
            ReceivableRisk.Status.DISMISSED: _("Dismissed"),
            ReceivableRisk.Status.CLOSED: _("Paid or no longer open"),
        }[risk.status]
        fields = [
            CardField(_("Invoice"), risk.invoice),
            CardField(_("Customer"), risk.customer),
            CardField(_("Due date"), formatting.day(risk.due_date)),
            CardField(_("Probability of paying late"), _pct(risk.probability)),
            *[CardField(_("Why"), text) for text in reasons],
            CardField(_("Model version"), risk.run.version),
        ]
        actions = [CardAction("dismiss", _("Dismiss"))] if risk.status == ReceivableRisk.Status.OPEN else []
        return Card(
            topic=topic, title=_("Receivable at risk: %(invoice)s %(customer)s") % {
                "invoice": risk.invoice, "customer": risk.customer},
            status="at_risk" if risk.status == ReceivableRisk.Status.OPEN else risk.status,
            status_label=status_label, link="", link_label="", locale=translation.get_language(),
            amount=_money(risk.outstanding, risk.currency), fields=fields, actions=actions,
            note=_("Estimated from the customer's payment history and this invoice; the reasons are the "
                   "facts that raise the estimate most."),
        )


def handle_risk_action(topic: str, actor: Any, action_id: str, idempotency_key: str) -> str:
    from foresight import services

    ident = _ident(topic)
    with translation.override(language_of(actor)):
        if ident is None or action_id != "dismiss":
            return _(REFUSALS["missing"])
        try:
            services.dismiss("risk", ident, actor)
        except services.ActionRefused as exc:
            return _(REFUSALS.get(str(exc), REFUSALS["missing"]))
        return _("Dismissed. Thanks, this is kept as feedback.")


def build_risk_digest(topic: str, recipient: Any) -> Card | None:
    ident = _ident(topic)
    risks = restrict(ReceivableRisk.objects.filter(connector_id=ident, status=ReceivableRisk.Status.OPEN,
                                                   probability__gte=settings.FORESIGHT_DIGEST_MIN),
                     recipient, "receivables.view").order_by("-probability", "invoice")[:10]
    risks = list(risks)
    if not risks:
        return None
    with translation.override(language_of(recipient)), timezone.override(time_zone_of(recipient)):
        fields = [CardField(f"{r.invoice} · {r.customer}", _("%(pct)s late · %(amount)s · due %(date)s") % {
            "pct": _pct(r.probability), "amount": _money(r.outstanding, r.currency),
            "date": formatting.day(r.due_date)}) for r in risks]
        return Card(
            topic=topic, title=_("Receivables at risk this week"), status="digest",
            status_label=_("%(count)s open invoices most likely to be paid late") % {"count": len(risks)},
            link="", link_label="", locale=translation.get_language(), fields=fields,
            note=_("Each line: the probability of being paid late, what is outstanding and the due date."),
        )


# --- the flag on expense claims' approval cards ---------------------------------------------------------


def expense_flag_fields(document: Any) -> list[CardField]:
    """Called by approvals.cards for every approval card (in the recipient's language): the flag of an
    unusual claim, with the reasons."""
    if document.kind != "expense_claim":
        return []
    score = ExpenseScore.objects.filter(document=document, flagged=True).first()
    if score is None:
        return []
    fields = []
    for reason in score.reasons:
        if reason["code"] == "category":
            text = _("The amount is %(ratio)s times the median of %(category)s claims (%(median)s, %(count)s claims)")
            fields.append(CardField(_("Unusual"), text % {
                "ratio": reason["ratio"], "category": score.category, "median": _money(reason["median"], "CNY"),
                "count": reason["count"]}))
        elif reason["code"] == "requester":
            text = _("%(ratio)s times the requester's median in this category (%(median)s)")
            fields.append(CardField(_("Unusual"), text % {"ratio": reason["ratio"],
                                                          "median": _money(reason["median"], "CNY")}))
    return fields
