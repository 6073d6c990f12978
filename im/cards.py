"""The platform-neutral card. Each adapter renders it into its platform's own format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any


@dataclass(frozen=True)
class CardField:
    label: str
    value: str


@dataclass(frozen=True)
class CardAction:
    id: str
    label: str
    style: str = "default"  # "primary", "danger" or "default"
    # Asked before the action runs ("Approve PR-… for ¥12,800.00?"); empty: the button acts at once.
    confirm: str = ""


@dataclass(frozen=True)
class Card:
    topic: str
    title: str
    status: str
    status_label: str
    link: str
    link_label: str
    locale: str
    amount: str = ""
    fields: list[CardField] = field(default_factory=list)
    actions: list[CardAction] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, without its deep copy of every value (a card is made into a
        dict twice per send: the row's copy and the adapter's; asdict was most of that CPU)."""
        return {name: [dict(vars(item)) for item in value] if name in ("fields", "actions") else value
                for name in _NAMES for value in (getattr(self, name),)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Card:
        data = dict(data)
        data["fields"] = [CardField(**f) for f in data.get("fields", [])]
        data["actions"] = [CardAction(**a) for a in data.get("actions", [])]
        return cls(**data)


_NAMES = tuple(f.name for f in dataclass_fields(Card))


# A card is built when it is sent (and again when it is updated), never earlier, so that a delayed
# send shows the document as it is now. Apps register one builder per topic kind ("approval", …): a
# builder of one card, ``build(topic, recipient)``, or of many at once, ``build_many([(topic, recipient),
# …])`` (the cards of a batch, where the kind reads each document once and decides who may see what for
# the whole batch); a kind registered with ``build_many`` only is built one card at a time through it.
CardBuilder = Callable[[str, Any], "Card | None"]
ManyCardBuilder = Callable[[list[tuple[str, Any]]], "list[Card | None]"]
ActionHandler = Callable[[str, Any, str, str], str]
_builders: dict[str, CardBuilder] = {}
_many_builders: dict[str, ManyCardBuilder] = {}
_action_handlers: dict[str, ActionHandler] = {}


def topic_kind(topic: str) -> str:
    return topic.split(".", 1)[0]


def register_card_kind(kind: str, builder: CardBuilder | None = None, action_handler: ActionHandler | None = None,
                       *, build_many: ManyCardBuilder | None = None) -> None:
    if build_many is not None:
        _many_builders[kind] = build_many
        builder = builder or (lambda topic, recipient: build_many([(topic, recipient)])[0])
    if builder is None:
        raise ValueError(f"card kind {kind!r} needs a builder")
    _builders[kind] = builder
    if action_handler is not None:
        _action_handlers[kind] = action_handler


def build_card(topic: str, recipient: Any, platform: str = "") -> Card | None:
    """The card ``recipient`` should see for ``topic`` now, or None if they may see nothing.

    With ``platform``, its "Open" link is the one that platform should carry (``sso.links``): a
    login-free link where the platform proves who taps, else a link token naming the platform.
    """
    return build_cards([(topic, recipient, platform)])[0]


def build_cards(wanted: list[tuple[str, Any, str]]) -> list[Card | None]:
    """``build_card`` for each ``(topic, recipient, platform)``, in order: a kind with ``build_many``
    builds all of its cards in one call."""
    from sso.links import LOGIN_FREE_PLATFORMS, card_link_for
    from sso.tokens import links_for_platform

    cards: list[Card | None] = [None] * len(wanted)
    named: set[int] = set()  # cards whose links were made for their platform
    by_kind: dict[str, list[int]] = {}
    for index, (topic, _recipient, _platform) in enumerate(wanted):
        by_kind.setdefault(topic_kind(topic), []).append(index)
    for kind, indexes in by_kind.items():
        platforms = {wanted[i][2] for i in indexes}
        one_platform = platforms.pop() if len(platforms) == 1 else ""
        if one_platform:  # the usual batch: its links are made for the platform at once
            named.update(indexes)
        with links_for_platform(one_platform):
            many = _many_builders.get(kind)
            if many is not None:
                built = many([(wanted[i][0], wanted[i][1]) for i in indexes])
            else:
                built = [_builders[kind](wanted[i][0], wanted[i][1]) for i in indexes]
        for index, card in zip(indexes, built, strict=True):
            cards[index] = card
    for index, (card, (_topic, recipient, platform)) in enumerate(zip(cards, wanted, strict=True)):
        # A link made for its platform is final unless that platform proves who taps (a login-free link).
        if card is not None and platform and card.link and (index not in named or platform in LOGIN_FREE_PLATFORMS):
            cards[index] = replace(card, link=card_link_for(platform, card.link, recipient))
    return cards


def action_handler_for(topic: str) -> ActionHandler | None:
    return _action_handlers.get(topic_kind(topic))


def no_access_card(topic: str, title: str) -> Card:
    """A card for someone who may not open what it is about: it says so, with no data and no link. Built in
    the recipient's language (the caller's ``translation.override``), like ``title``."""
    from django.utils import translation
    from django.utils.translation import gettext as _

    return Card(topic=topic, title=title, status="no_access",
                status_label=_("You may not view it in the portal. Ask your administrator for access."),
                link="", link_label="", locale=translation.get_language())
