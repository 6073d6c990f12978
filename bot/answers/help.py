"""Help, and the answer to what the bot did not understand: what it can do and the closest names
the asker may see. Never silence."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from approvals.selectors import visible_documents
from bot import vocabulary
from bot.answers.base import Answer, Context
from finance.selectors import receivables_for
from im.cards import CardField
from inventory.selectors import orders_for, stock_levels, stock_of_item


def _examples() -> list[CardField]:
    return [
        CardField(_("Receivables"),
                  _("“项目A的收款情况”, “华东电子还欠多少钱”, “overdue receivables for ACME”, “本月回款多少”")),
        CardField(_("Stock"),
                  _("“SKU-123 还有多少库存”, “伺服电机在上海仓有多少”, “which items are below safety stock”")),
        CardField(_("Orders"), _("“订单 SO-2026-0815 到哪了”, “status of my orders shipped this week”")),
        CardField(_("Approvals"),
                  _("“我的待审批”, “approve PR-2026-0042”, “批准 PR-2026-0042 同意”, “谁还没批 PR-2026-0042”")),
    ]


def render_help(found: list, entities: dict[str, Any], ctx: Context) -> Answer:
    return Answer(_("What I can answer"), fields=_examples(),
                  note=_("Periods such as “上个月”, “本季度”, “last week” or “3月” work too. "
                         "Ask a follow-up such as “那项目B呢?” within a few minutes."), status="help")


def may_see(user: Any, kind: str, value: str) -> bool:
    """Suggest only names the asker could get an answer about (selectors, as everywhere)."""
    if kind == "customer":
        return receivables_for(user, customer=value).exists() or orders_for(user).filter(customer=value).exists()
    if kind == "project":
        return receivables_for(user, project=value).exists() or visible_documents(user).filter(project=value).exists()
    if kind == "sku":
        return stock_of_item(user, value).exists()
    if kind == "warehouse":
        return stock_levels(user).filter(warehouse=value).exists()
    return False


def render_unknown(near: list[tuple[str, str]], ctx: Context) -> Answer:
    labels = vocabulary.current().labels
    suggestions = [labels.get((kind, value), value) for kind, value in near if may_see(ctx.user, kind, value)]
    fields = []
    if suggestions:
        fields.append(CardField(_("Did you mean"), ", ".join(suggestions)))
    fields += _examples()
    return Answer(_("Sorry, I did not understand that."), fields=fields,
                  note=_("Send “help” for what I can do."), status="unknown")


def render_not_found(name: str, near: list[tuple[str, str]], ctx: Context) -> Answer:
    """"找不到项目D", with the closest names the asker may see. A name that exists but is hidden from
    the asker gets exactly this answer too."""
    labels = vocabulary.current().labels
    suggestions = [labels.get((kind, value), value) for kind, value in near
                   if kind in ("customer", "project", "sku", "warehouse") and may_see(ctx.user, kind, value)]
    fields = [CardField(_("Did you mean"), ", ".join(suggestions))] if suggestions else []
    return Answer(_("Could not find %(name)s") % {"name": name}, fields=fields,
                  note=_("Check the name, or send “help” for what I can do."), status="empty")


def render_clarify(user: Any, parsed: Any, ctx: Context) -> Answer:
    """Ask instead of guessing: a decision aimed at no document, "how much?" alone, "approve all"."""
    from approvals.selectors import pending_page

    if parsed.bare_decision or parsed.intent == "clarify" and not parsed.vague:
        page = pending_page(user, 5)
        fields = [CardField(d.external_id, d.title) for d in page.documents]
        note = _("Name one document, e.g. “批准 PR-2026-0042” or “reject EC-2026-0107 because …”. "
                 "Several at once: the bulk approval page.")
        return Answer(_("Which document do you mean?"), fields=fields, note=note, status="clarify")
    return Answer(_("What would you like to know?"), fields=_examples(),
                  note=_("Say what it is about: a project, a customer, an item, an order or a document."),
                  status="clarify")
