"""Help, and the answer to what the bot did not understand: what it can do and the closest names
the asker may see. Never silence."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from bot import vocabulary
from bot.answers.base import Answer, Context
from bot.intents import clarifiers, examples, may_see_name
from im.cards import CardField


def _examples() -> list[CardField]:
    return [CardField(str(label), str(text)) for label, text in examples()]


def render_help(found: list, entities: dict[str, Any], ctx: Context) -> Answer:
    return Answer(_("What I can answer"), fields=_examples(),
                  note=_("Periods such as “上个月”, “本季度”, “last week” or “3月” work too. "
                         "Ask a follow-up such as “那项目B呢?” within a few minutes."), status="help")


def may_see(user: Any, kind: str, value: str) -> bool:
    """Suggest only names the asker could get an answer about (the apps' selectors, as everywhere)."""
    return may_see_name(user, kind, value)


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
    """Ask instead of guessing: a decision aimed at no document (the app that decides asks which one),
    "how much?" alone, "approve all"."""
    for clarify in clarifiers():
        answer = clarify(user, parsed, ctx)
        if answer is not None:
            return answer
    return Answer(_("What would you like to know?"), fields=_examples(),
                  note=_("Say what it is about: a project, a customer, an item, an order or a document."),
                  status="clarify")
