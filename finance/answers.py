"""The bot's receivables intent: by project, customer or invoice; overdue; collected in a period ("本月回款多少").
Registered with the bot in ``FinanceConfig.ready()`` (``register_bot_intents``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from bot.answers.base import Answer, Context, day, money, period_label, widget_path
from finance.models import Receivable
from finance.selectors import receivables_for, summarize
from im.cards import CardField


def rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[Receivable]:
    queryset = receivables_for(user, project=entities.get("project", ""), customer=entities.get("customer", ""))
    if entities.get("invoice"):
        queryset = queryset.filter(external_id=entities["invoice"])
    result = list(queryset)
    if entities.get("overdue"):
        result = [r for r in result if r.days_overdue(ctx.today)]
    if ctx.period and not entities.get("collected") and not entities.get("invoiced"):
        result = [r for r in result if ctx.period.contains(r.due_date)]
    return result


def visible(member: Any, found: list[Receivable]) -> set[int]:
    return set(receivables_for(member).filter(pk__in=[r.pk for r in found]).values_list("pk", flat=True))


def _scope(entities: dict[str, Any]) -> str:
    return entities.get("invoice") or entities.get("project") or entities.get("customer") or ""


def render(found: list[Receivable], entities: dict[str, Any], ctx: Context) -> Answer:
    scope = _scope(entities)
    if entities.get("collected"):
        return _collected(found, entities, ctx)
    if entities.get("invoiced"):
        return _invoiced(found, entities, ctx)
    title = _("Overdue receivables") if entities.get("overdue") else _("Receivables")
    if scope:
        title = f"{title}: {scope}"
    if ctx.period:
        title = f"{title} ({period_label(ctx.period, ctx)})"
    link = ""
    if entities.get("project"):
        link = widget_path("receivables", "project", entities["project"])
    elif entities.get("customer"):
        link = widget_path("receivables", "customer", entities["customer"])
    if not found:
        # Nothing there and nothing visible look the same.
        return Answer(title, note=_("No receivables found that you may see."), link="", status="empty")
    summary = summarize(found, ctx.today)
    fields = []
    for totals in summary.totals:
        fields.append(CardField(_("Outstanding (%(currency)s)") % {"currency": totals.currency},
                                money(totals.outstanding, totals.currency, ctx)))
        fields.append(CardField(_("Overdue (%(currency)s)") % {"currency": totals.currency},
                                money(totals.overdue, totals.currency, ctx)))
        for bucket, value in totals.buckets.items():
            if value and bucket != "current":
                label = _("%(days)s days overdue") % {"days": bucket}
                fields.append(CardField(label, money(value, totals.currency, ctx)))
    fields.append(CardField(_("Open invoices"), str(summary.open_count)))
    for receivable in [r for r in found if r.outstanding][:5]:
        late = receivable.days_overdue(ctx.today)
        detail = f"{receivable.customer} · {money(receivable.outstanding, receivable.currency, ctx)} · " + (
            _("due %(date)s") % {"date": day(receivable.due_date, ctx)})
        if late:
            detail += " · " + _("%(days)s days overdue") % {"days": late}
        fields.append(CardField(receivable.external_id, detail))
    if summary.last_payment:
        fields.append(CardField(_("Last payment"), day(summary.last_payment, ctx)))
    main = summary.totals[0]
    return Answer(title, fields=fields, amount=money(main.outstanding, main.currency, ctx), link=link)


def _collected(found: list[Receivable], entities: dict[str, Any], ctx: Context) -> Answer:
    period = ctx.period
    title = _("Collected")
    if scope := _scope(entities):
        title = f"{title}: {scope}"
    if period:
        title = f"{title} ({period_label(period, ctx)})"
    by_currency: dict[str, Decimal] = {}
    undated: dict[str, Decimal] = {}
    for r in found:
        if not r.paid:
            continue
        if r.last_payment_date is None:
            undated[r.currency] = undated.get(r.currency, Decimal(0)) + r.paid
        elif period is None or period.contains(r.last_payment_date):
            by_currency[r.currency] = by_currency.get(r.currency, Decimal(0)) + r.paid
    if not found:
        return Answer(title, note=_("No receivables found that you may see."), status="empty")
    fields = [CardField(_("Collected (%(currency)s)") % {"currency": c}, money(v, c, ctx))
              for c, v in sorted(by_currency.items())]
    note = ""
    if undated:
        # The mirror knows the paid amount but not always when: said, never guessed.
        note = _("Paid without a payment date from the ERP: %(amounts)s") % {
            "amounts": ", ".join(money(v, c, ctx) for c, v in sorted(undated.items()))}
    amount = money(by_currency.get("CNY", Decimal(0)), "CNY", ctx) if by_currency or not undated else ""
    return Answer(title, fields=fields, amount=amount, note=note)


def _invoiced(found: list[Receivable], entities: dict[str, Any], ctx: Context) -> Answer:
    """How much was invoiced (paid or not): a different question from what is still outstanding.
    The mirror knows each invoice's due date, not its issue date, so a period filters by due date."""
    title = _("Invoiced")
    if scope := _scope(entities):
        title = f"{title}: {scope}"
    if ctx.period:
        found = [r for r in found if ctx.period.contains(r.due_date)]
        title = f"{title} ({period_label(ctx.period, ctx)})"
    if not found:
        return Answer(title, note=_("No receivables found that you may see."), status="empty")
    totals: dict[str, Decimal] = {}
    for r in found:
        totals[r.currency] = totals.get(r.currency, Decimal(0)) + r.amount
    fields = [CardField(_("Invoiced (%(currency)s)") % {"currency": c}, money(v, c, ctx))
              for c, v in sorted(totals.items())]
    fields.append(CardField(_("Invoices"), str(len(found))))
    main = "CNY" if "CNY" in totals else sorted(totals)[0]
    return Answer(title, fields=fields, amount=money(totals[main], main, ctx))


def register_bot_intents() -> None:
    from django.utils.translation import gettext_lazy

    from bot.intents import Intent, Reference, register_example, register_intent, register_names, register_reference

    register_intent(Intent("receivables", rows, visible, render,
                           frozenset({"project", "customer", "invoice", "period", "overdue", "collected",
                                      "invoiced", "unknown"}),
                           empty_title=gettext_lazy("Receivables")))
    register_reference(Reference(
        "invoice", lambda user: receivables_for(user).values_list("external_id", flat=True), intents=("receivables",)))
    for kind in ("customer", "project"):
        register_names(kind, Receivable,
                       lambda kind=kind: ((v, v) for v in Receivable.objects.values_list(kind, flat=True).distinct()),
                       lambda user, value, kind=kind: receivables_for(user, **{kind: value}).exists())
    register_example(10, gettext_lazy("Receivables"), gettext_lazy(
        "“项目A的收款情况”, “华东电子还欠多少钱”, “overdue receivables for ACME”, “本月回款多少”"))
