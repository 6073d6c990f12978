"""The platform-neutral card. Each adapter renders it into its platform's own format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
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
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Card:
        data = dict(data)
        data["fields"] = [CardField(**f) for f in data.get("fields", [])]
        data["actions"] = [CardAction(**a) for a in data.get("actions", [])]
        return cls(**data)


# A card is built when it is sent (and again when it is updated), never earlier, so that a delayed
# send shows the document as it is now. Apps register one builder per topic kind ("approval", …).
CardBuilder = Callable[[str, Any], "Card | None"]
ActionHandler = Callable[[str, Any, str, str], str]
_builders: dict[str, CardBuilder] = {}
_action_handlers: dict[str, ActionHandler] = {}


def topic_kind(topic: str) -> str:
    return topic.split(".", 1)[0]


def register_card_kind(kind: str, builder: CardBuilder, action_handler: ActionHandler | None = None) -> None:
    _builders[kind] = builder
    if action_handler is not None:
        _action_handlers[kind] = action_handler


def build_card(topic: str, recipient: Any, platform: str = "") -> Card | None:
    """The card ``recipient`` should see for ``topic`` now, or None if they may see nothing.

    With ``platform``, its "Open" link is the one that platform should carry (``sso.links``): a
    login-free link where the platform proves who taps, else a link token naming the platform.
    """
    card = _builders[topic_kind(topic)](topic, recipient)
    if card is not None and platform and card.link:
        from sso.links import card_link_for

        card = replace(card, link=card_link_for(platform, card.link))
    return card


def action_handler_for(topic: str) -> ActionHandler | None:
    return _action_handlers.get(topic_kind(topic))
