"""The Agora Chat (声网 IM) adapter: cards as custom messages that the customer's app renders.

Agora Chat has no card format of its own. A card is a ``custom`` message (REST
``POST /{org}/{app}/messages/users``) with ``customEvent`` ``portal_card`` and ``customExts`` (at most
16 string values) carrying the card as JSON plus a few plain fields for simple clients.

- Address: the Agora Chat user id (``ImIdentity(platform="agora").external_id``).
- Message id: ``"users:<user id> <msg id>"`` or ``"chatgroups:<group id> <msg id>"``.
- Update: the REST API can recall a message (within 2 minutes by default) but documents no way to
  edit a custom one, so an update sends a *replacement* (``portal_card_update``) whose ``card_id`` is
  the first message's id; clients show the newest version of a ``card_id``. ``MessageRef`` keeps the
  first id, so later updates and button presses on any version resolve to it.
- Buttons: the client sends a custom message ``portal_card_action`` (``card_id``, ``action``) to the
  bot; Agora's post-delivery callback brings it to ``/api/im/agora/callback``.
- Auth: an app token (AccessToken2, ``token.py``) from the app id and certificate, refreshed before
  it expires and once more on a 401.
- Not idempotent: the REST API takes no idempotency key; a retry after a lost answer may post twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from im.cards import Card
from im.platforms.agora.token import build_chat_token
from im.platforms.base import (
    ANSWER,
    CALLBACKS,
    GROUPS,
    RECALL,
    TEXT,
    THREADS,
    WIDGETS,
    CallbackRejected,
    GroupChat,
    InboundEvent,
    LinkedIdentityAddress,
    SentMessage,
    TransportError,
)

logger = logging.getLogger(__name__)

PLATFORM = "agora"
CARD_EVENT = "portal_card"
UPDATE_EVENT = "portal_card_update"
ACTION_EVENT = "portal_card_action"
WIDGET_EVENT = "portal_widget"
MAX_BODY_BYTES = 5 * 1024  # larger request bodies are refused with 413
MAX_EXTS = 16
CALLBACK_WINDOW_SECONDS = 5 * 60

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class AgoraError(TransportError):
    def __init__(self, message: str, *, status: int | None = None, error: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.error = error


def error_from_response(response: httpx.Response, doing: str) -> AgoraError:
    """429 and 5xx are transient (429 honours Retry-After); 401, 403, 404 (unknown user or group),
    413 (too big) and other 4xx are permanent, with Agora's ``error`` and description as the reason."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    status = response.status_code
    error = str(body.get("error", ""))
    detail = f"{doing}: HTTP {status} {error} {body.get('error_description', '')}".strip()
    if status == 429:
        retry_after = None
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("retry-after", ""))
        return AgoraError(detail, status=status, error=error, retry_after=retry_after)
    if status >= 500 or status == 408:
        return AgoraError(detail, status=status, error=error)
    if status == 401:
        detail += " (the app token was refused: check AGORA_APP_ID and AGORA_APP_CERTIFICATE)"
    return AgoraError(detail, status=status, error=error, permanent=True)


def message_id_of(kind: str, to: str, msg_id: str) -> str:
    return f"{kind}:{to} {msg_id}"


def parse_message_id(message_id: str) -> tuple[str, str, str]:
    """``(kind, to, msg id)``; kind is ``users`` or ``chatgroups``."""
    target, _, msg_id = message_id.partition(" ")
    kind, _, to = target.partition(":")
    if kind not in ("users", "chatgroups") or not to or not msg_id:
        raise TransportError(f"not an Agora Chat message reference: {message_id!r}", permanent=True)
    return kind, to, msg_id


def card_exts(card: Card, *, card_id: str = "") -> dict[str, str]:
    """``customExts`` for a card: the whole card as JSON, and plain fields for simple clients."""
    data = card.to_dict()
    exts = {
        "card": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        "topic": card.topic,
        "title": card.title,
        "status": card.status,
        "status_label": card.status_label,
        "link": card.link,
        "actions": ",".join(a.id for a in card.actions),
    }
    if card_id:
        exts["card_id"] = card_id
    return exts


def security(call_id: str, secret: str, timestamp: Any) -> str:
    """Agora Chat's callback signature: MD5 of ``callId + secret + timestamp``."""
    return hashlib.md5(f"{call_id}{secret}{timestamp}".encode()).hexdigest()  # noqa: S324 (Agora's scheme)


def _exts(body: Mapping[str, Any]) -> dict[str, str]:
    exts = body.get("customExts") or body.get("v2:customExts") or {}
    if isinstance(exts, list):  # some payloads carry a list of one-entry maps
        merged: dict[str, str] = {}
        for item in exts:
            if isinstance(item, Mapping):
                merged.update(item)
        return merged
    return dict(exts) if isinstance(exts, Mapping) else {}


class AgoraAdapter(LinkedIdentityAddress):
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, RECALL, CALLBACKS, ANSWER})
    default_transport: Any = None  # tests put an httpx.MockTransport here

    def __init__(self, transport: httpx.BaseTransport | None = None, **config: Any) -> None:
        def conf(name: str, default: Any = "") -> Any:
            return config.get(name, getattr(settings, f"AGORA_{name.upper()}", default))

        self.host = str(conf("chat_host")).rstrip("/")
        if self.host and not self.host.startswith("http"):
            self.host = "https://" + self.host
        self.org, self.app = conf("chat_org"), conf("chat_app")
        self.app_id, self.certificate = conf("app_id"), conf("app_certificate")
        self.bot_user = conf("chat_bot_user") or "admin"
        self.callback_secret = conf("chat_callback_secret")
        self.token_ttl = int(conf("token_ttl", 24 * 3600))
        self._transport = transport or self.default_transport
        self._timeout = float(conf("timeout", 10.0))
        self._http: httpx.Client | None = None

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        if not (self.host and self.org and self.app):
            raise TransportError("set AGORA_CHAT_HOST, AGORA_CHAT_ORG and AGORA_CHAT_APP", permanent=True)
        if self._http is None:
            self._http = httpx.Client(base_url=f"{self.host}/{self.org}/{self.app}", timeout=self._timeout,
                                      transport=self._transport)
        return self._http

    def app_token(self, *, fresh: bool = False) -> str:
        if not (self.app_id and self.certificate):
            raise TransportError("set AGORA_APP_ID and AGORA_APP_CERTIFICATE", permanent=True)
        key = (self.app_id, self.certificate)
        with _tokens_lock:
            token, expires = _tokens.get(key, ("", 0.0))
            # Renew at 90% of its life, so a token never expires between building a request and sending it.
            if fresh or not token or time.time() > expires - self.token_ttl * 0.1:
                try:
                    token = build_chat_token(self.app_id, self.certificate, self.token_ttl)
                except ValueError as exc:
                    raise TransportError(str(exc), permanent=True) from exc
                _tokens[key] = (token, time.time() + self.token_ttl)
            return token

    def _call(self, method: str, path: str, *, doing: str, json_body: Any = None) -> dict[str, Any]:
        refreshed = False
        while True:
            headers = {"Authorization": f"Bearer {self.app_token(fresh=refreshed)}", "Accept": "application/json"}
            try:
                response = self.http.request(method, path, json=json_body, headers=headers)
            except httpx.TransportError as exc:
                raise AgoraError(f"{doing}: {type(exc).__name__}: {exc}") from exc
            if response.status_code == 401 and not refreshed:
                refreshed = True  # an expired token: build a new one and try once more
                continue
            if response.is_success:
                return response.json()
            raise error_from_response(response, doing)

    def _send(self, kind: str, to: str, msg_type: str, body: dict[str, Any], ext: dict[str, Any] | None = None) -> str:
        payload: dict[str, Any] = {"from": self.bot_user, "to": [to], "type": msg_type, "body": body}
        if ext:
            payload["ext"] = ext
        size = len(json.dumps(payload, ensure_ascii=False).encode())
        if size > MAX_BODY_BYTES:
            raise AgoraError(f"message of {size} bytes is over Agora Chat's {MAX_BODY_BYTES}", error="too_big",
                             permanent=True)
        data = self._call("POST", f"/messages/{kind}", json_body=payload, doing=f"send to {to}").get("data") or {}
        msg_id = data.get(to)
        if not msg_id:
            raise AgoraError(f"send to {to}: no message id in the answer", permanent=True)
        return str(msg_id)

    def _send_card(self, kind: str, to: str, card: Card, *, event: str, card_id: str = "") -> str:
        exts = card_exts(card, card_id=card_id)
        fields = list(card.fields)
        while True:
            body = {"customEvent": event, "customExts": exts}
            ext = {"em_apns_ext": {"em_push_title": card.title[:100], "em_push_content": card.status_label[:100]}}
            try:
                return self._send(kind, to, "custom", body, ext)
            except AgoraError as exc:
                if exc.error != "too_big" or not fields:
                    raise
                # Too big: drop the last fields (the page shows them all) rather than fail.
                fields.pop()
                smaller = Card.from_dict({**card.to_dict(), "fields": [f.__dict__ for f in fields]})
                exts = card_exts(smaller, card_id=card_id)

    # --- the interface ----------------------------------------------------------------------------
    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        msg_id = self._send_card("users", address, card, event=CARD_EVENT)
        return SentMessage(message_id=message_id_of("users", address, msg_id))

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        msg_id = self._send_card("chatgroups", chat_id, card, event=CARD_EVENT)
        return SentMessage(message_id=message_id_of("chatgroups", chat_id, msg_id))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        kind, to, card_id = parse_message_id(message_id)
        replacement = self._send_card(kind, to, card, event=UPDATE_EVENT, card_id=card_id)
        logger.info("agora: card %s replaced by message %s", card_id, replacement)

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        msg_id = self._send("users", address, "txt", {"msg": text})
        return SentMessage(message_id=message_id_of("users", address, msg_id))

    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        kind, to, original = parse_message_id(message_id)
        msg_id = self._send(kind, to, "txt", {"msg": text}, {"portal_reply_to": original})
        return SentMessage(message_id=message_id_of(kind, to, msg_id))

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        if self.bot_user == "admin":
            raise TransportError("set AGORA_CHAT_BOT_USER: a group needs a real owner", permanent=True)
        payload = {
            "groupname": name[:128], "description": name[:512], "public": False, "maxusers": 3000,
            "owner": self.bot_user, "members": members[:100], "custom": idempotency_key[:1024],
        }
        data = self._call("POST", "/chatgroups", json_body=payload, doing=f"create group {name}")
        group_id = str((data.get("data") or {}).get("groupid", ""))
        if not group_id:
            raise AgoraError("create group: no group id in the answer", permanent=True)
        if members[100:]:
            self.add_members(group_id, members[100:])
        return GroupChat(chat_id=group_id)

    def add_members(self, chat_id: str, members: list[str]) -> None:
        for start in range(0, len(members), 60):  # the batch endpoint takes 60 users at a time
            self._call("POST", f"/chatgroups/{quote(chat_id, safe='')}/users",
                       json_body={"usernames": members[start:start + 60]}, doing=f"add members to {chat_id}")

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        self._send("chatgroups", chat_id, "custom", {"customEvent": WIDGET_EVENT,
                                                     "customExts": {"title": title, "url": url}})

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """Recall a sent message (Agora allows it within 2 minutes unless configured otherwise)."""
        kind, to, msg_id = parse_message_id(message_id)
        payload = {"msg_id": msg_id, "to": to, "from": self.bot_user,
                   "chat_type": "chat" if kind == "users" else "groupchat"}
        self._call("POST", "/messages/msg_recall", json_body=payload, doing=f"recall {msg_id}")

    # --- inbound ----------------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        try:
            data = json.loads(body)
        except ValueError:
            raise CallbackRejected("body is not JSON", status=400) from None
        if not isinstance(data, dict):
            raise CallbackRejected("body is not a JSON object", status=400)
        self.verify(data)
        if data.get("eventType") not in ("chat", "chat_offline"):
            return InboundEvent(kind="ignored", raw=data)
        payload = data.get("payload") or {}
        bodies = payload.get("bodies") or [{}]
        first = bodies[0] if isinstance(bodies[0], Mapping) else {}
        sender, group = str(data.get("from", "")), data.get("chat_type") == "groupchat"
        appkey = str(data.get("appkey", ""))
        if first.get("type") == "custom" and first.get("customEvent") == ACTION_EVENT:
            exts = _exts(first)
            kind, to = ("chatgroups", str(exts.get("chat_id") or data.get("to", ""))) if group else ("users", sender)
            return InboundEvent(kind="card_action", sender=sender, tenant=appkey, raw=data,
                                message_id=message_id_of(kind, to, str(exts.get("card_id", ""))),
                                action_id=str(exts.get("action", "")), chat_id=to if group else "")
        if first.get("type") == "txt" and sender != self.bot_user:
            return InboundEvent(kind="message", sender=sender, tenant=appkey, text=str(first.get("msg", "")),
                                chat_id=str(data.get("to", "")) if group else "", raw=data,
                                message_id=message_id_of("chatgroups" if group else "users",
                                                         str(data.get("to", "")) if group else sender,
                                                         str(data.get("msg_id", ""))))
        return InboundEvent(kind="ignored", raw=data)

    def verify(self, data: Mapping[str, Any], *, now: float | None = None) -> None:
        if not self.callback_secret:
            raise CallbackRejected("AGORA_CHAT_CALLBACK_SECRET is not set: refusing unverifiable callbacks")
        call_id, timestamp, given = data.get("callId"), data.get("timestamp"), data.get("security")
        if not (isinstance(call_id, str) and isinstance(timestamp, int) and isinstance(given, str)):
            raise CallbackRejected("callback without callId, timestamp or security")
        if abs((time.time() if now is None else now) - timestamp / 1000) > CALLBACK_WINDOW_SECONDS:
            raise CallbackRejected("Agora callback timestamp outside the 5-minute window")
        if not hmac.compare_digest(security(call_id, self.callback_secret, timestamp), given.lower()):
            raise CallbackRejected("bad Agora callback security")
        # Agora's signature does not cover the body: a captured (callId, timestamp, security) could
        # carry another body within the window. Each callId is therefore accepted once.
        from django.core.cache import cache

        if not cache.add(f"agora-callback:{call_id}", 1, timeout=CALLBACK_WINDOW_SECONDS * 2):
            raise CallbackRejected("Agora callback replayed (callId already seen)")

    def answer(self, event: InboundEvent, text: str) -> None:
        if event.chat_id:
            self._send("chatgroups", event.chat_id, "txt", {"msg": text})
        else:
            self.send_text(event.sender, text, idempotency_key="")
