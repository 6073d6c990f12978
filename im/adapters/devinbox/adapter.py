"""The dev inbox: a real ImAdapter whose "platform" is a page in the portal (/dev/inbox/).

It keeps every card it is sent, edits them in place, and tells open inbox pages live.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from im.adapters.base import SentMessage, TransportError
from im.adapters.devinbox.models import DevInboxMessage
from im.cards import Card
from widgets.live import publish

PLATFORM = "devinbox"


def inbox_topic(user_id: int | str) -> str:
    return f"devinbox.{user_id}"


class DevInboxAdapter:
    platform = PLATFORM

    def address_of(self, user: Any) -> str | None:
        return str(user.pk)

    def user_for(self, address: str) -> Any:
        return get_user_model().objects.filter(pk=int(address), is_active=True).first()

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        user = self.user_for(address)
        if user is None:
            raise TransportError(f"no dev inbox for {address}", permanent=True)
        message, _ = DevInboxMessage.objects.get_or_create(
            idempotency_key=idempotency_key, defaults={"recipient": user, "card": card.to_dict()}
        )
        publish(inbox_topic(address), message.revision)
        return SentMessage(message_id=str(message.pk))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        message = DevInboxMessage.objects.filter(pk=int(message_id), recipient_id=int(address)).first()
        if message is None:
            raise TransportError(f"dev inbox message {message_id} is gone", permanent=True)
        message.card = card.to_dict()
        message.revision += 1
        message.save(update_fields=["card", "revision", "updated_at"])
        publish(inbox_topic(address), message.revision)
