"""The dev inbox: a real ImAdapter whose "platform" is a page in the portal (/dev/inbox/).

It keeps every card it is sent, edits them in place, and tells open inbox pages live.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from im.cards import Card
from im.platforms.base import ARCHIVE, EXTERNAL_MEMBERS, GROUPS, RECALL, WIDGETS, GroupChat, SentMessage, TransportError
from im.platforms.devinbox.models import DevInboxGroup, DevInboxGroupMessage, DevInboxMessage
from widgets.live import publish

PLATFORM = "devinbox"


def inbox_topic(user_id: int | str) -> str:
    return f"devinbox.{user_id}"


class DevInboxAdapter:
    platform = PLATFORM
    capabilities = frozenset({GROUPS, WIDGETS, ARCHIVE, RECALL, EXTERNAL_MEMBERS})

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

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """The message leaves the simulated phone (retention's recall). Group messages carry ids ``g<pk>``
        and are addressed by the group's id; a message already gone is fine."""
        if message_id.startswith("g") and message_id[1:].isdigit():
            DevInboxGroupMessage.objects.filter(pk=int(message_id[1:]), group_id=int(address)).delete()
            publish(group_topic(address), 0)
        elif message_id.isdigit() and address.isdigit():
            DevInboxMessage.objects.filter(pk=int(message_id), recipient_id=int(address)).delete()
            publish(inbox_topic(address), 0)
        else:
            raise TransportError(f"not a dev inbox message: {address}/{message_id}", permanent=True)

    # --- group chats: a group "phone" per group at /dev/inbox/group/<id>/ ---

    def external_address(self, name: str, email: str) -> str | None:
        """External contacts (a supplier) join by e-mail, as on platforms with guest accounts."""
        return f"ext:{email}" if email else None

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        group, _ = DevInboxGroup.objects.get_or_create(
            idempotency_key=idempotency_key, defaults={"name": name, "members": list(dict.fromkeys(members))}
        )
        publish(group_topic(group.pk), 1)
        return GroupChat(chat_id=str(group.pk))

    def _group(self, chat_id: str) -> DevInboxGroup:
        group = DevInboxGroup.objects.filter(pk=int(chat_id)).first() if chat_id.isdigit() else None
        if group is None:
            raise TransportError(f"no dev inbox group {chat_id}", permanent=True)
        return group

    def add_members(self, chat_id: str, members: list[str]) -> None:
        group = self._group(chat_id)
        group.members = list(dict.fromkeys([*group.members, *members]))
        group.save(update_fields=["members"])

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        group = self._group(chat_id)
        message, _ = DevInboxGroupMessage.objects.get_or_create(
            idempotency_key=idempotency_key, defaults={"group": group, "card": card.to_dict()}
        )
        publish(group_topic(group.pk), message.pk)
        return SentMessage(message_id=f"g{message.pk}")

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        group = self._group(chat_id)
        DevInboxGroupMessage.objects.get_or_create(
            idempotency_key=f"widget:{chat_id}:{url}",
            defaults={"group": group, "widget_title": title, "widget_url": url},
        )

    def archive_group(self, chat_id: str, name: str) -> None:
        DevInboxGroup.objects.filter(pk=self._group(chat_id).pk).update(archived=True)


def group_topic(group_id: int | str) -> str:
    return f"devinbox.group{group_id}"
