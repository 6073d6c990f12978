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
from urllib.parse import quote

from django.conf import settings

from im.cards import Card
from im.platforms.base import (
    ARCHIVE,
    GROUPS,
    RECALL,
    WIDGETS,
    GroupChat,
    LinkedIdentityAddress,
    SentMessage,
    TransportError,
)
from im.platforms.matrix.client import API, MatrixClient, MatrixError
from im.platforms.matrix.render import render_card, render_edit

PLATFORM = "matrix"
# Bot account data: group idempotency key → room id, so a retried create_group finds its room.
GROUPS_ACCOUNT_DATA = "org.erp_im_portal.groups"
WIDGET_EVENT = "im.vector.modular.widgets"
ARCHIVED_PREFIX = "[已归档 Archived] "
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


class MatrixAdapter(LinkedIdentityAddress):
    platform = PLATFORM
    capabilities = frozenset({GROUPS, WIDGETS, ARCHIVE, RECALL})

    def __init__(self, client: MatrixClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> MatrixClient:
        if self._client is None:
            self._client = client_from_settings()
        return self._client

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

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """Redact the card (and with it what its edits showed: clients hide edits of a redacted event)."""
        room_id, event_id = parse_message_id(message_id)
        self.client.redact(room_id, event_id, txn_id("redact", event_id), reason="retention")

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

    # --- group chats (notification rules: war rooms, review groups) -------------------------------
    def _state(self, room_id: str, event_type: str, state_key: str = "") -> str:
        return f"{API}/rooms/{quote(room_id, safe='')}/state/{quote(event_type, safe='')}/{quote(state_key, safe='')}"

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        """A private room named ``name`` with these Matrix users invited; the same key finds the same room."""
        client = self.client
        key = txn_id("group", idempotency_key)
        known = client.account_data(GROUPS_ACCOUNT_DATA)
        if isinstance(known.get(key), str):
            return GroupChat(chat_id=known[key])
        invite = [m for m in dict.fromkeys(members) if USER_ID.match(m) and m != client.whoami()]
        room_id = client._call("POST", f"{API}/createRoom", doing=f"create the group {name!r}", json={
            "name": name, "preset": "private_chat", "invite": invite,
        })["room_id"]
        client.set_account_data(GROUPS_ACCOUNT_DATA, {**known, key: room_id})
        return GroupChat(chat_id=room_id)

    def add_members(self, chat_id: str, members: list[str]) -> None:
        for member in members:
            if USER_ID.match(member):
                self.client.invite(chat_id, member)

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        event_id = self.client.send(chat_id, render_card(card), txn_id("chatcard", idempotency_key))
        return SentMessage(message_id=message_id_of(chat_id, event_id))

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        """A room widget (the state event Element reads), pinned to the top of the room. A portal widget
        is pinned through its Matrix bootstrap page, which learns the viewer from the client's OpenID
        token (widgets/matrix.py); Element fills in ``$matrix_widget_id``."""
        base = f"{settings.PORTAL_BASE_URL}/w/"
        board = f"{settings.PORTAL_BASE_URL}/g/"  # a group's board opens the same way as a widget
        if (url.startswith(base) and not url.startswith(f"{base}matrix/")) or url.startswith(board):
            path = url[len(settings.PORTAL_BASE_URL):]
            url = f"{settings.PORTAL_BASE_URL}/w/matrix/?path={quote(path, safe='/')}&widgetId=$matrix_widget_id"
        widget_id = "portal_" + hashlib.sha256(url.encode()).hexdigest()[:16]
        self.client._call("PUT", self._state(chat_id, WIDGET_EVENT, widget_id), doing="pin a widget", json={
            "type": "m.custom", "url": url, "name": title, "id": widget_id, "data": {"title": title},
        })
        self.client._call("PUT", self._state(chat_id, "io.element.widgets.layout"), doing="lay out the widget",
                          json={"widgets": {widget_id: {"container": "top", "index": 0, "width": 100, "height": 40}}})

    def archive_group(self, chat_id: str, name: str) -> None:
        """Archived: the name says so and only the bot may still post (the history stays readable)."""
        client = self.client
        if not name.startswith(ARCHIVED_PREFIX):
            client._call("PUT", self._state(chat_id, "m.room.name"), doing="rename the archived group",
                         json={"name": ARCHIVED_PREFIX + name})
        levels = client._call("GET", self._state(chat_id, "m.room.power_levels"), doing="read power levels")
        levels["events_default"] = 100
        client._call("PUT", self._state(chat_id, "m.room.power_levels"), doing="make the group read-only",
                     json=levels)
