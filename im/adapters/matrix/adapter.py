"""The Matrix adapter: cards as HTML messages in a direct room with each recipient, edits in place.

- Address: the recipient's Matrix user id (``ImIdentity(platform="matrix").external_id``).
- Room: the bot's direct-message room with that user, found in the bot's ``m.direct`` account data
  (the homeserver remembers it for us, so no table here) or created with an invite and recorded there.
- Message id: ``"<room id> <event id>"`` (neither contains a space), kept in ``MessageRef.message_id``.
- Exactly once: the transaction id of the send is derived from the delivery's idempotency key, so a
  retried send returns the first event instead of posting again (Synapse keeps transaction ids per
  device for a day; see docs/integration.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

from django.conf import settings

from im.adapters.base import SentMessage, TransportError
from im.adapters.matrix.client import MatrixClient, MatrixError
from im.adapters.matrix.render import render_card, render_edit
from im.cards import Card

PLATFORM = "matrix"
USER_ID = re.compile(r"^@[^:\s]+:\S+$")

# user id → room id, per (homeserver, bot), for this process; m.direct is the durable copy.
_rooms: dict[tuple[str, str, str], str] = {}
_rooms_lock = threading.Lock()


def txn_id(kind: str, key: str) -> str:
    """A transaction id made from an idempotency key: the same key always gives the same id."""
    return f"portal.{kind}.{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def message_id_of(room_id: str, event_id: str) -> str:
    return f"{room_id} {event_id}"


def parse_message_id(message_id: str) -> tuple[str, str]:
    """``(room id, event id)`` of a ``message_id_of()`` value."""
    room_id, _, event_id = message_id.partition(" ")
    if not room_id.startswith("!") or not event_id.startswith("$"):
        raise TransportError(f"not a Matrix message reference: {message_id!r}", permanent=True)
    return room_id, event_id


_clients: dict[tuple, MatrixClient] = {}
_clients_lock = threading.Lock()


def client_from_settings() -> MatrixClient:
    """One client per configuration and process, so connections are kept alive between deliveries."""
    config = (settings.MATRIX_HOMESERVER_URL, settings.MATRIX_BOT_TOKEN, settings.MATRIX_BOT_USER,
              settings.MATRIX_BOT_PASSWORD, settings.MATRIX_TIMEOUT)
    with _clients_lock:
        if config not in _clients:
            homeserver, token, user, password, timeout = config
            _clients[config] = MatrixClient(homeserver, token=token, user=user, password=password, timeout=timeout)
        return _clients[config]


class MatrixAdapter:
    platform = PLATFORM

    def __init__(self, client: MatrixClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> MatrixClient:
        if self._client is None:
            self._client = client_from_settings()
        return self._client

    def address_of(self, user: Any) -> str | None:
        from sso.models import ImIdentity

        identity = ImIdentity.objects.filter(user=user, platform=PLATFORM).order_by("pk").first()
        return identity.external_id if identity else None

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        if not USER_ID.match(address):
            raise TransportError(f"{address!r} is not a Matrix user id (@name:server)", permanent=True)
        content = render_card(card)
        txn = txn_id("card", idempotency_key)
        room_id = self.direct_room(address)
        try:
            event_id = self.client.send(room_id, content, txn)
        except MatrixError as exc:
            if exc.status != 403:
                raise
            # The bot is no longer in the remembered room (left, kicked): start a new one, once.
            room_id = self.direct_room(address, forget=room_id)
            event_id = self.client.send(room_id, content, txn)
        return SentMessage(message_id=message_id_of(room_id, event_id))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        room_id, event_id = parse_message_id(message_id)
        content = render_edit(event_id, card)
        # The same edit retried gets the same transaction id; a different card is a new edit.
        key = event_id + json.dumps(content["m.new_content"], sort_keys=True, ensure_ascii=False)
        self.client.send(room_id, content, txn_id("edit", key))

    def reply_notice(self, room_id: str, event_id: str, text: str) -> str:
        """A bot notice answering the event ``event_id`` (the answer to a reply command)."""
        content = {"msgtype": "m.notice", "body": text, "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
        return self.client.send(room_id, content, txn_id("notice", room_id + event_id))

    # --- direct rooms -----------------------------------------------------------------------------
    def direct_room(self, user_id: str, *, forget: str | None = None) -> str:
        """The bot's direct room with ``user_id``: remembered, found in ``m.direct``, or created."""
        client = self.client
        key = (client.homeserver, client.whoami(), user_id)
        with _rooms_lock:
            if forget is None and key in _rooms:
                return _rooms[key]
            _rooms.pop(key, None)
            direct = client.direct_rooms()
            known = [r for r in direct.get(user_id, []) if r != forget]
            for room_id in reversed(known):  # the newest first
                membership = client.membership(room_id, user_id)
                if membership in ("join", "invite"):
                    _rooms[key] = room_id
                    return room_id
                if membership == "leave":  # they left: ask again rather than open yet another room
                    try:
                        client.invite(room_id, user_id)
                    except MatrixError:
                        continue
                    _rooms[key] = room_id
                    return room_id
            if not client.user_exists(user_id):
                raise MatrixError(f"unknown Matrix user {user_id}", permanent=True, status=404)
            room_id = client.create_direct_room(user_id)
            # Record it at once, so that a retry after a crash finds this room (and the same txn id
            # in it) instead of creating another.
            direct[user_id] = [r for r in known if r != room_id] + [room_id]
            client.set_direct_rooms(direct)
            _rooms[key] = room_id
            return room_id
