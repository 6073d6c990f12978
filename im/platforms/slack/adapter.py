"""The Slack adapter: Block Kit cards in the bot's direct message with each member, edited in place.

- Address: the member id (``ImIdentity(platform="slack").external_id``, "U…"); a channel id ("C…",
  "G…", "D…") is used as it is.
- Message id: ``"<channel id> <ts>"`` (what chat.update and thread replies need), in ``MessageRef``.
- Exactly once: Slack's chat.postMessage takes no idempotency key. The key is sent as message
  ``metadata`` (visible in conversations.history) so a double post after a timeout can be traced,
  but a retry after a lost answer may post twice (docs/integration.md).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from im.cards import Card
from im.platforms.base import (
    ANSWER,
    CALLBACKS,
    GROUPS,
    RECALL,
    TEXT,
    THREADS,
    WIDGETS,
    GroupChat,
    InboundEvent,
    LinkedIdentityAddress,
    SentMessage,
    TransportError,
)
from im.platforms.slack import inbound
from im.platforms.slack.client import SlackClient, SlackError
from im.platforms.slack.render import render_card, render_notice

PLATFORM = "slack"
MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
CHANNEL_NAME_CHARS = 80

# member id → DM channel id, per (token, member), for this process; conversations.open is idempotent
# anyway (it returns the existing DM), this only saves a call per card.
_dm_channels: dict[tuple[str, str], str] = {}
_dm_lock = threading.Lock()


def message_id_of(channel: str, ts: str) -> str:
    return f"{channel} {ts}"


def parse_message_id(message_id: str) -> tuple[str, str]:
    channel, _, ts = message_id.partition(" ")
    if not CHANNEL_ID.match(channel) or not ts:
        raise TransportError(f"not a Slack message reference: {message_id!r}", permanent=True)
    return channel, ts


def channel_name(name: str, idempotency_key: str) -> str:
    """A valid channel name (lowercase, no spaces or periods, ≤ 80) that is the same for the same key."""
    slug = re.sub(r"[^a-z0-9_\-\u0080-\uffff]+", "-", name.lower()).strip("-") or "portal"
    suffix = hashlib.sha256(idempotency_key.encode()).hexdigest()[:6]
    return f"{slug[: CHANNEL_NAME_CHARS - 7]}-{suffix}"


class SlackAdapter(LinkedIdentityAddress):
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, RECALL, CALLBACKS, ANSWER})
    default_transport: Any = None  # tests put an httpx.MockTransport here

    def __init__(self, client: SlackClient | None = None, *, signing_secret: str | None = None) -> None:
        self._client = client
        self._signing_secret = signing_secret

    @property
    def client(self) -> SlackClient:
        if self._client is None:
            self._client = SlackClient(settings.SLACK_BOT_TOKEN, timeout=settings.SLACK_TIMEOUT,
                                       transport=self.default_transport)
        return self._client

    # --- sending ----------------------------------------------------------------------------------
    def channel_for(self, address: str) -> str:
        if CHANNEL_ID.match(address):
            return address
        if not MEMBER_ID.match(address):
            raise TransportError(f"{address!r} is not a Slack member id (U…)", permanent=True)
        key = (self.client._token, address)
        with _dm_lock:
            if key not in _dm_channels:
                data = self.client.call("conversations.open", {"users": address})
                _dm_channels[key] = data["channel"]["id"]
            return _dm_channels[key]

    def _post(self, channel: str, content: dict[str, Any], **extra: Any) -> SentMessage:
        data = self.client.call("chat.postMessage", {"channel": channel, **content, **extra})
        return SentMessage(message_id=message_id_of(data.get("channel", channel), data["ts"]))

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        return self.send_card_to_chat(self.channel_for(address), card, idempotency_key=idempotency_key)

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        metadata = {"event_type": "portal_card", "event_payload": {"topic": card.topic, "key": idempotency_key}}
        return self._post(chat_id, render_card(card), metadata=metadata, unfurl_links=False)

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        channel, ts = parse_message_id(message_id)
        self.client.call("chat.update", {"channel": channel, "ts": ts, **render_card(card)})

    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        channel, ts = parse_message_id(message_id)
        return self._post(channel, render_notice(text), thread_ts=ts)

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        return self._post(self.channel_for(address), render_notice(text))

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        channel, ts = parse_message_id(message_id)
        # Already gone is what retention wanted.
        self.client.call("chat.delete", {"channel": channel, "ts": ts}, ok_errors=frozenset({"message_not_found"}))

    # --- groups and widgets -----------------------------------------------------------------------
    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        """A private channel named after ``name`` plus a hash of the key, so a retry finds the first one."""
        wanted = channel_name(name, idempotency_key)
        try:
            data = self.client.call("conversations.create", {"name": wanted, "is_private": True})
            chat_id = data["channel"]["id"]
        except SlackError as exc:
            if exc.error != "name_taken":
                raise
            chat_id = self._find_private_channel(wanted)
        if members:
            self.add_members(chat_id, members)
        return GroupChat(chat_id=chat_id)

    def _find_private_channel(self, name: str) -> str:
        cursor = ""
        for _ in range(20):  # 20 pages of 200: a workspace with more private channels is unusual
            page = self.client.call("conversations.list", {
                "types": "private_channel", "exclude_archived": True, "limit": 200, "cursor": cursor,
            })
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    return channel["id"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor", "")
            if not cursor:
                break
        raise SlackError(f"channel #{name} exists but the bot cannot see it", error="name_taken", permanent=True)

    def add_members(self, chat_id: str, members: list[str]) -> None:
        for start in range(0, len(members), 1000):  # conversations.invite takes up to 1,000 users
            users = ",".join(members[start:start + 1000])
            self.client.call("conversations.invite", {"channel": chat_id, "users": users},
                             ok_errors=frozenset({"already_in_channel", "cant_invite_self"}))

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        """A message whose link unfurls and opens the live widget, pinned to the channel."""
        blocks = [{
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"<{url}|{inbound_safe(title)}>"},
            "accessory": {"type": "button", "action_id": "portal.open", "url": url,
                          "text": {"type": "plain_text", "text": title[:75] or "Open"}},
        }]
        sent = self._post(chat_id, {"text": title[:4000], "blocks": blocks}, unfurl_links=True)
        channel, ts = parse_message_id(sent.message_id)
        self.client.call("pins.add", {"channel": channel, "timestamp": ts}, ok_errors=frozenset({"already_pinned"}))

    # --- inbound ----------------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        secret = settings.SLACK_SIGNING_SECRET if self._signing_secret is None else self._signing_secret
        inbound.verify(secret, headers, body)
        return inbound.parse(body, headers)

    def answer(self, event: InboundEvent, text: str) -> None:
        """Tell the presser what happened: an ephemeral reply through the interaction's response_url."""
        url = event.raw.get("response_url") if isinstance(event.raw, Mapping) else None
        if url:
            self.client.post_to_response_url(url, {"response_type": "ephemeral", "replace_original": False,
                                                   "text": text})
        elif event.message_id.strip():
            self.reply_in_thread(event.sender, event.message_id, text)


def inbound_safe(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")
