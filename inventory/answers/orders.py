"""The bot's orders intent: one by number, or a list (mine, by status, by customer, in a period)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from bot.answers.base import Answer, Context, day, money, widget_path
from im.cards import CardField
from inventory.models import SalesOrder
from inventory.selectors import order_for, orders_for
from sso.selectors import erp_logins

LIMIT = 10
# The ERP's status words, translated by the catalogue (bot entries of locale/zh_Hans).
STATUS_LABELS = {
    "confirmed": "confirmed", "picking": "picking", "shipped": "shipped", "delivered": "delivered",
    "delayed": "delayed", "cancelled": "cancelled",
}


def rows(user: Any, entities: dict[str, Any], ctx: Context) -> list[SalesOrder]:
    if entities.get("order"):
        order = order_for(user, entities["order"])
        return [order] if order else []
    queryset = orders_for(user)
    if entities.get("mine"):
        # "My orders": the orders whose sales rep is one of the asker's ERP logins (a filter on
        # top of what restrict() already allows, not a permission).
        queryset = queryset.filter(sales_rep_login__in=erp_logins(user))
    if entities.get("customer"):
        queryset = queryset.filter(customer=entities["customer"])
    if entities.get("status"):
        queryset = queryset.filter(status=entities["status"])
    found = list(queryset)
    if ctx.period:
        # Shipped/delivered "this week": when the ERP last reported the status; otherwise the
        # delivery date.
        if entities.get("status") in ("shipped", "delivered"):
            found = [o for o in found if ctx.period.contains(_local_day(o, ctx))]
        else:
            found = [o for o in found if ctx.period.contains(o.delivery_date)]
    return found[:LIMIT]


def _local_day(order: SalesOrder, ctx: Context):
    from zoneinfo import ZoneInfo

    from sso.models import time_zone_of

    return order.updated_at.astimezone(ZoneInfo(time_zone_of(ctx.user))).date()


def visible(member: Any, found: list[SalesOrder]) -> set[int]:
    return set(orders_for(member).filter(pk__in=[o.pk for o in found]).values_list("pk", flat=True))


def _status(order: SalesOrder) -> str:
    return _(STATUS_LABELS.get(order.status, order.status))


def render(found: list[SalesOrder], entities: dict[str, Any], ctx: Context) -> Answer:
    if entities.get("order"):
        if not found:
            return Answer(_("Order %(number)s") % {"number": entities["order"]},
                          note=_("No such order that you may see."), status="empty")
        order = found[0]
        fields = [CardField(_("Customer"), order.customer), CardField(_("Status"), _status(order)),
                  CardField(_("Delivery date"), day(order.delivery_date, ctx))]
        if order.previous_status:
            fields.append(CardField(_("Previous status"), _(STATUS_LABELS.get(order.previous_status,
                                                                               order.previous_status))))
        amount = money(order.amount, order.currency, ctx) if order.amount is not None else ""
        return Answer(_("Order %(number)s") % {"number": order.external_id}, fields=fields, amount=amount,
                      link=widget_path("order", order.external_id), status=order.status)
    title = _("My orders") if entities.get("mine") else _("Orders")
    if entities.get("status"):
        title = f"{title} · {_(STATUS_LABELS.get(entities['status'], entities['status']))}"
    if entities.get("customer"):
        title = f"{title} · {entities['customer']}"
    if ctx.period:
        from bot.answers.base import period_label

        title = f"{title} ({period_label(ctx.period, ctx)})"
    if not found:
        return Answer(title, note=_("No orders found that you may see."), status="empty")
    fields = [
        CardField(o.external_id, " · ".join(filter(None, [
            o.customer, _status(o), money(o.amount, o.currency, ctx) if o.amount is not None else "",
            _("delivery %(date)s") % {"date": day(o.delivery_date, ctx)}])))
        for o in found
    ]
    return Answer(title, fields=fields)
