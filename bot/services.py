"""``ask()``: the one way into the bot, for the API, the dev inbox and every IM platform.

It never decides permissions itself: the answers are built by the apps' selectors for the asker
(and, in a group, for every member, keeping only what all may see), and ``authorize()`` says who may
use the bot at all.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from bot import language_model, lexicon, parser, vocabulary
from bot.answers import help as helps
from bot.answers.base import Answer, Context
from bot.intents import intent_named, reference_for
from bot.models import BotExchange
from bot.periods import resolve, today_for
from im.cards import Card
from portal.observability.metrics import BOT_ANSWER_SECONDS
from sso.authz import authorize
from sso.models import language_of, time_zone_of

logger = logging.getLogger(__name__)


@dataclass
class BotReply:
    intent: str
    entities: dict[str, Any]
    card: Card | None
    text: str
    private_card: Card | None = None  # what only the asker may see, sent to them directly
    private_text: str = ""
    period: dict[str, str] | None = None
    exchange_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def private_part(self) -> Card | None:
        return self.private_card

    def as_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "entities": {**self.entities, **({"period": self.period} if self.period else {})},
            "answer": {
                "text": self.text,
                "card": self.card.to_dict() if self.card else None,
                "private": ({"text": self.private_text, "card": self.private_card.to_dict()}
                            if self.private_card else None),
                "exchange": self.exchange_id,
            },
        }


def _context_key(user: Any, conversation: str | None) -> str:
    return f"bot:context:{conversation or 'direct'}:{user.pk}"


def _with_context(user: Any, parsed: parser.Parsed, conversation: str | None) -> tuple[str, dict[str, Any]]:
    """A follow-up ("那项目B呢?") is the previous question with the new names in it; "approve it" and
    "has it been approved?" are about the document of the last question; "how much?" alone continues
    the last question or asks which one."""
    previous = cache.get(_context_key(user, conversation))
    if parsed.bare_decision or parsed.vague:
        if not previous:
            return parser.CLARIFY, {}
        if parsed.vague:
            return previous["intent"], dict(previous["entities"])
        document = previous["entities"].get("document")
        if not document:
            return parser.CLARIFY, {}
        if parsed.asking:
            return parser.STATUS, {"document": document}
        entities = {"document": document, "outcome": parsed.bare_decision}
        if parsed.comment:
            entities["comment"] = parsed.comment
        return parser.DECIDE, entities
    if not previous or not parsed.followup:
        return parsed.intent, parsed.entities
    handler = intent_named(previous["intent"])
    new_keys = set(parsed.entities) - {"period"}
    if handler is None or (new_keys and not new_keys <= handler.dimensions):
        return parsed.intent, parsed.entities
    if not new_keys and not (parsed.marker and "period" in parsed.entities):
        return parsed.intent, parsed.entities  # "今天天气怎么样" is not about the last document
    return previous["intent"], parser.merge_followup(previous["entities"], parsed.entities)


def _answer_language(user: Any, text: str) -> str:
    """The profile's language; without one, the language of the question (English asked, English
    answered; Chinese characters or pinyin, Chinese)."""
    try:
        chosen = user.profile.language
    except (ObjectDoesNotExist, AttributeError):
        chosen = ""
    if chosen:
        return chosen
    if vocabulary.has_cjk(text):
        return "zh-hans"
    if re.search(r"[A-Za-z]{2,}", text) and not lexicon.from_pinyin(vocabulary.normalize(text),
                                                                    vocabulary.Vocabulary())[1]:
        return "en"
    return language_of(user)


def _ends_with(number: str, fragment: str) -> bool:
    tail = number.rsplit("-", 1)[-1]
    return tail.isdigit() and int(tail) == int(fragment)


def _resolve(user: Any, intent: str, entities: dict[str, Any], parsed: parser.Parsed
             ) -> tuple[str, dict[str, Any], list[tuple[str, str]]]:
    """Number fragments and items to the one document or order the asker may see, and names the
    asker may not see to "unknown" (the words they typed: the real name is never echoed)."""
    entities = dict(entities)
    near = list(parsed.near)
    ref = entities.pop("ref", None)
    if ref:
        reference = reference_for(intent, parsed.ref_kind)
        if reference is not None:
            if intent not in reference.intents and reference.redirect:
                intent = reference.redirect
            matches = sorted({n for n in reference.numbers(user) if _ends_with(n, ref)})
            if len(matches) == 1:
                entities[reference.kind] = matches[0]
            else:
                entities["unknown"] = ref
    handler = intent_named(intent)
    if handler is not None and handler.resolve is not None:
        entities = handler.resolve(user, entities)
    if "unknown" in entities and entities["unknown"] not in dict(parsed.near).values():
        near = parser.nearest(entities["unknown"], vocabulary.current())
    return intent, entities, near


def _hide_unseen(user: Any, entities: dict[str, Any], parsed: parser.Parsed) -> dict[str, Any] | None:
    """A customer or project named in this question that the asker may not see becomes "unknown"
    (the words they typed): the answer and ``entities`` never echo its real name. Asked only when the
    selectors found nothing, since rows found for a name prove the asker may see it."""
    hidden = [kind for kind in ("customer", "project")
              if kind in parsed.entities and kind in entities and not helps.may_see(user, kind, entities[kind])]
    if not hidden:
        return None
    entities = {k: v for k, v in entities.items() if k not in hidden}
    entities["unknown"] = parsed.typed.get(hidden[0]) or hidden[0]
    return entities


def _card(answer: Answer, ctx: Context, topic: str = "bot.0") -> Card:
    return Card(
        topic=topic, title=answer.title, status=answer.status, status_label="", link=answer.link,
        link_label=_("More") if answer.link else "", locale=ctx.language, amount=answer.amount,
        fields=answer.fields, actions=answer.actions, note=answer.note,
    )


@BOT_ANSWER_SECONDS.time()  # portal_bot_answer_seconds
def ask(
    user: Any,
    text: str,
    *,
    audience: Iterable[Any] | None = None,
    conversation: str | None = None,
    channel: str = "api",
) -> BotReply:
    """Answer ``text`` for ``user``. In a group, ``audience`` is its members: the public answer holds
    only what every member may see, and the rest goes to the asker privately."""
    started = time.perf_counter()
    language = _answer_language(user, text)
    with translation.override(language):
        if not authorize(user, "bot.query"):
            answer = Answer(_("You may not use the bot."), note=_("Ask your administrator for access."),
                            status="refused")
            ctx = Context(user, language, today_for(time_zone_of(user)))
            return _finish(user, text, "refused", {}, answer, None, ctx, started, conversation, channel, 0)
        parsed = parser.parse(text)
        intent, entities = _with_context(user, parsed, conversation)
        intent, entities, near = _resolve(user, intent, entities, parsed)
        source = "parser"
        if intent == parser.UNKNOWN and (backend := language_model.config()) is not None:
            chosen = language_model.choose(text, vocabulary.current(), backend)
            if chosen is not None:
                (intent, entities), source = chosen, "model"
        if intent in (parser.HELP, parser.UNKNOWN):
            entities = {}
        ctx = Context(user, language, today_for(time_zone_of(user)))
        if entities.get("period"):
            ctx.period = resolve(entities["period"], ctx.today)
        handler = intent_named(intent)
        members = [m for m in (audience or []) if m.pk != user.pk]
        private: Answer | None = None
        if intent == parser.CLARIFY:
            answer = helps.render_clarify(user, parsed, ctx)
        elif handler is not None and "unknown" in entities:
            # "找不到项目D": the same words whether the name does not exist or is hidden from the asker.
            answer = helps.render_not_found(entities["unknown"], near, ctx)
        elif handler is None:
            answer = helps.render_help([], entities, ctx) if intent == parser.HELP else helps.render_unknown(
                parsed.near, ctx)
        elif (found := handler.rows(user, entities, ctx)) or (hidden := _hide_unseen(user, entities, parsed)) is None:
            # Found rows, or nothing found for names the asker may see: the handler answers.
            if members and handler.personal:
                # A decision is personal: its card goes to the asker only.
                answer = Answer(_("Sent to you privately."), status="private")
                private = handler.render(found, entities, ctx)
            elif members:
                common = {row.pk for row in found}
                for member in members:
                    common &= handler.visible(member, found)
                public_rows = [row for row in found if row.pk in common]
                answer = handler.render(public_rows, entities, ctx)
                if len(public_rows) < len(found):
                    private = handler.render(found, entities, ctx)
                    answer.note = " ".join(filter(None, [answer.note, _("The rest was sent to you privately.")]))
            else:
                answer = handler.render(found, entities, ctx)
            for part in (answer, private):
                if part is not None and part.status == "empty" and handler.empty_title:
                    # Say nothing of what a name resolved to when the asker may see nothing of it.
                    part.title = str(handler.empty_title)
        else:
            entities = hidden
            answer = helps.render_not_found(entities["unknown"], parser.nearest(entities["unknown"],
                                                                                 vocabulary.current()), ctx)
        if handler is not None:
            remembered = handler.remember_as or intent  # never repeat a decision
            kept = {k: v for k, v in entities.items() if k not in ("outcome", "comment")}
            cache.set(_context_key(user, conversation), {"intent": remembered, "entities": kept},
                      settings.BOT_CONTEXT_SECONDS)
        return _finish(user, text, intent, entities, answer, private, ctx, started, conversation, channel,
                       len(members) + 1 if members else 0, source)


def _finish(user: Any, text: str, intent: str, entities: dict[str, Any], answer: Answer, private: Answer | None,
            ctx: Context, started: float, conversation: str | None, channel: str, audience_size: int,
            source: str = "parser") -> BotReply:
    decision_card = private if private is not None else answer
    pending_action = None
    handler = intent_named(intent)
    if handler is not None and handler.pending_action is not None and decision_card.actions:
        pending_action = handler.pending_action(user, entities)
    with transaction.atomic():  # one commit for the row and its cards (the card's topic needs the row's id)
        exchange = BotExchange.objects.create(
            user=user, conversation=(conversation or "")[:200], channel=channel[:30], text=text[:4000],
            intent=intent, entities=entities, answer=answer.text, audience_size=audience_size,
            pending_action=pending_action, source=source,
        )
        card = _card(answer, ctx, exchange.topic)
        private_card = _card(private, ctx, exchange.topic) if private is not None else None
        exchange.card = card.to_dict()
        exchange.private_card = private_card.to_dict() if private_card else None
        exchange.duration_ms = int((time.perf_counter() - started) * 1000)
        exchange.save(update_fields=["card", "private_card", "duration_ms"])
    logger.info("bot %s intent=%s entities=%s", user, intent, entities)
    return BotReply(
        intent=intent, entities=entities, card=card, text=answer.text, private_card=private_card,
        private_text=private.text if private else "",
        period=ctx.period.as_dict() if ctx.period else None, exchange_id=exchange.pk, extra={"source": source},
    )


def reply_on(platform: str, user: Any, reply: BotReply) -> None:
    """Send the asker their answer card on ``platform`` through the outbox (``write_outbox`` →
    send_delivery), the same path as every other card, so its buttons come back through
    handle_card_action."""
    from im.services import OutboxItem, write_outbox

    write_outbox([OutboxItem(dedupe_key=f"bot:{reply.exchange_id}:{user.pk}:{platform}",
                             topic=f"bot.{reply.exchange_id}", platform=platform, recipient=user,
                             reason="bot answer")])


def press(user: Any, exchange_id: int, action_id: str) -> str:
    """A confirm/cancel button pressed outside an IM platform (the API)."""
    from bot.cards import handle_action

    return handle_action(f"bot.{exchange_id}", user, action_id, f"bot:{exchange_id}:{action_id}")


def answer_in_group(adapter: Any, chat_id: str, asker: Any, audience: list[Any], text: str) -> BotReply:
    """A question to the bot in a group chat: the public card (what every member may see) goes to the
    chat, the rest to the asker's direct chat on the same platform. Members the portal does not know
    (guests, external contacts) count as seeing nothing, so the public card then shows nothing."""
    reply = ask(asker, text, audience=audience, conversation=f"{adapter.platform}:group:{chat_id}",
                channel=adapter.platform)
    card = reply.card
    if card is not None:
        link = f"{settings.PORTAL_BASE_URL}{card.link}" if card.link.startswith("/") else card.link
        public = Card(**{**card.__dict__, "link": link, "actions": []})  # no personal link, no buttons
        adapter.send_card_to_chat(chat_id, public, idempotency_key=f"bot:{reply.exchange_id}:group")
    if reply.private_card is not None:
        reply_on(adapter.platform, asker, reply)
    return reply
