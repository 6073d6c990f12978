"""The IM card of a bot answer (topic ``bot.<exchange id>``) and its confirm/cancel buttons."""

from __future__ import annotations

from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bot.intents import ActionRefused, intent_named
from bot.models import BotExchange
from im.cards import Card, CardField
from sso.models import language_of, time_zone_of
from sso.tokens import make_link_url


def _exchange(topic: str) -> BotExchange | None:
    _kind, _, ident = topic.partition(".")
    return BotExchange.objects.filter(pk=int(ident)).first() if ident.isdigit() else None


def build(topic: str, recipient: Any) -> Card | None:
    """The asker's own answer (the private part when there is one); nobody else gets this card."""
    exchange = _exchange(topic)
    if exchange is None or recipient is None or exchange.user_id != recipient.pk:
        return None
    data = exchange.private_card or exchange.card
    if not data:
        return None
    card = Card.from_dict(data)
    with translation.override(language_of(recipient)):
        fields = [CardField(_("You asked"), exchange.text[:200]), *card.fields]
        link = make_link_url(recipient, card.link) if card.link.startswith("/") else card.link
        actions = [] if exchange.action_result else card.actions
        return Card(
            topic=topic, title=card.title, status="done" if exchange.action_result else card.status,
            status_label=exchange.action_result, link=link, link_label=card.link_label, locale=card.locale,
            amount=card.amount, fields=fields, actions=actions, note="" if exchange.action_result else card.note,
        )


def handle_action(topic: str, actor: Any, action_id: str, idempotency_key: str) -> str:
    """Confirm (or cancel) what the bot prepared: through the intent's ``confirm`` (a decision: ``decide()``,
    as the page does)."""
    from im.services import refresh_cards

    exchange = _exchange(topic)
    if exchange is None or actor is None or exchange.user_id != actor.pk or not exchange.pending_action:
        return _("This action is no longer available.")
    with translation.override(language_of(actor)), timezone.override(time_zone_of(actor)):
        if exchange.action_result:
            return exchange.action_result
        pending = exchange.pending_action
        if action_id == "cancel":
            result = _("Cancelled. Nothing was decided.")
        elif action_id == "confirm" and (intent := intent_named(exchange.intent)) and intent.confirm:
            try:
                result = intent.confirm(actor, pending, idempotency_key)
            except ActionRefused as exc:
                return exc.message
        else:
            return _("This action is no longer available.")
        updated = BotExchange.objects.filter(pk=exchange.pk, action_result="").update(action_result=result)
        if updated:
            refresh_cards(topic)
        return result
