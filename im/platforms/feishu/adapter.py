"""The Feishu/Lark (飞书) adapter: a self-built app's bot, by contract (no Feishu here).

Documented calls (open.feishu.cn, 服务端 API › 消息 / 群组):
- ``POST /open-apis/auth/v3/tenant_access_token/internal`` ``{app_id, app_secret}`` → ``{code, msg,
  tenant_access_token, expire}`` (2 h), cached once per app (``httpjson``).
- ``POST /open-apis/im/v1/messages?receive_id_type=open_id|chat_id`` ``{receive_id, msg_type, content, uuid}``
  → ``data.message_id``; ``uuid`` de-duplicates a retried send for an hour.
- ``PATCH /open-apis/im/v1/messages/:message_id`` ``{content}``: cards with ``update_multi``, for 14 days.
- ``POST /open-apis/im/v1/messages/:message_id/reply`` ``{msg_type, content, uuid}``.
- ``DELETE /open-apis/im/v1/messages/:message_id`` → ``{code: 0, msg: "success", data: {}}`` (recall).
- ``POST /open-apis/im/v1/chats?user_id_type=open_id&uuid=…`` ``{name, user_id_list, chat_mode, chat_type}``
  → ``data.chat_id``; ``POST /open-apis/im/v1/chats/:chat_id/members?member_id_type=open_id`` ``{id_list}``.
- Errors: HTTP 4xx with ``{code, msg}``; HTTP 429 / code 99991400 is the frequency limit (headers
  ``x-ogw-ratelimit-reset`` say when it resets); 230020 is the per-chat/user message limit.

Addressing: the user's ``open_id`` (``ImIdentity(platform="feishu").external_id``, as sso.im_login links it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from im.cards import Card
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
    Unsupported,
)
from im.platforms.feishu import crypto, render
from im.platforms.httpjson import (
    AppTokenAdapter,
    TokenRejected,
    clip,
)

logger = logging.getLogger(__name__)

PLATFORM = "feishu"
API = "https://open.feishu.cn/open-apis"

RATE_LIMITED = {99991400, 230020}
TOKEN_REJECTED = {99991661, 99991663, 99991668}
DEFAULT_RATE_WAIT = 1.0  # 5 per second per user or chat: a second is enough for a bucket to refill


def classify(status: int, headers: httpx.Headers, body: dict[str, Any], doing: str) -> TransportError | None:
    code = body.get("code", 0)
    if status < 400 and code in (0, None):
        return None
    detail = f"feishu {doing}: HTTP {status} {code} {body.get('msg', '')}".strip()
    if status == 429 or code in RATE_LIMITED:
        reset = headers.get("x-ogw-ratelimit-reset") or headers.get("retry-after") or ""
        return TransportError(detail, retry_after=float(reset) if reset.isdigit() else DEFAULT_RATE_WAIT)
    if status >= 500:
        return TransportError(detail)
    if code in TOKEN_REJECTED:
        return TokenRejected(detail)
    # 230001 bad params, 230002 bot not in chat, 230013 user outside the app's availability, 230025
    # content too long, 230099 card rejected, 99991672 scope missing…: retrying would not help.
    return TransportError(detail, permanent=True)


@dataclass(frozen=True)
class FeishuConfig:
    app_id: str
    app_secret: str
    encrypt_key: str = ""
    verification_token: str = ""

    @classmethod
    def from_settings(cls) -> FeishuConfig:
        from sso.im_login.base import app_config

        app = app_config(PLATFORM)
        if app is None or not app.client_id or not app.secret:
            raise TransportError("Feishu is not configured: set FEISHU_APP_ID and FEISHU_APP_SECRET", permanent=True)
        return cls(app_id=app.client_id, app_secret=app.secret, encrypt_key=settings.FEISHU_ENCRYPT_KEY,
                   verification_token=settings.FEISHU_VERIFICATION_TOKEN)


def uuid_for(kind: str, key: str) -> str:
    """A request ``uuid`` (at most 50 characters) from an idempotency key: the same key, the same uuid."""
    return f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


class FeishuAdapter(LinkedIdentityAddress, AppTokenAdapter):
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, RECALL, CALLBACKS, ANSWER})
    config_class = FeishuConfig
    classify = staticmethod(classify)
    cache_slot = "tenant_access_token"

    # --- plumbing ---------------------------------------------------------------------------------
    def fetch_token(self, config: FeishuConfig) -> tuple[str, int]:
        body = self._client.call("POST", f"{API}/auth/v3/tenant_access_token/internal", doing="get a token",
                                 json={"app_id": config.app_id, "app_secret": config.app_secret})
        return body["tenant_access_token"], int(body.get("expire", 7200))

    def token_owner(self, config: FeishuConfig) -> tuple[str, str]:
        return config.app_id, config.app_secret

    def call(self, method: str, path: str, *, doing: str, **kwargs: Any) -> dict[str, Any]:
        def attempt(token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
            return self._client.call(method, f"{API}/{path}", headers=headers, doing=doing, **kwargs)

        return self.with_app_token(attempt)

    def _send(self, receive_id_type: str, receive_id: str, msg_type: str, content: dict[str, Any], key: str,
              doing: str) -> SentMessage:
        body = self.call("POST", "im/v1/messages", params={"receive_id_type": receive_id_type}, doing=doing, json={
            "receive_id": receive_id,
            "msg_type": msg_type,
            "content": json.dumps(content, ensure_ascii=False),
            "uuid": uuid_for(msg_type[:4], key),
        })
        return SentMessage(message_id=body["data"]["message_id"])

    # --- required ---------------------------------------------------------------------------------
    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        return self._send("open_id", address, "interactive", render.card_json(card), idempotency_key, "send a card")

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        content = json.dumps(render.card_json(card), ensure_ascii=False)
        self.call("PATCH", f"im/v1/messages/{message_id}", json={"content": content}, doing="update a card")

    # --- capabilities -----------------------------------------------------------------------------
    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        body = self.call("POST", f"im/v1/messages/{message_id}/reply", doing="reply", json={
            "msg_type": "text",
            "content": json.dumps({"text": text}, ensure_ascii=False),
            "uuid": uuid_for("reply", message_id + text),
        })
        return SentMessage(message_id=body["data"]["message_id"])

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        return self._send("open_id", address, "text", {"text": text}, idempotency_key, "send a text")

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        body = self.call("POST", "im/v1/chats", doing="create a group chat",
                         params={"user_id_type": "open_id", "set_bot_manager": "false",
                                 "uuid": uuid_for("chat", idempotency_key)},
                         json={"name": clip(name, 60), "user_id_list": members, "chat_mode": "group",
                               "chat_type": "private"})
        return GroupChat(chat_id=body["data"]["chat_id"])

    def add_members(self, chat_id: str, members: list[str]) -> None:
        body = self.call("POST", f"im/v1/chats/{chat_id}/members", params={"member_id_type": "open_id"},
                         json={"id_list": members}, doing="add group members")
        data = body.get("data") or {}
        refused = list(data.get("invalid_id_list") or []) + list(data.get("not_existed_id_list") or [])
        if refused:
            if len(refused) >= len(members):
                raise TransportError(f"feishu add group members: none could be added: {refused}", permanent=True)
            logger.warning("feishu: %s could not be added to %s", refused, chat_id)

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        return self._send("chat_id", chat_id, "interactive", render.card_json(card), idempotency_key,
                          "send a card to a group")

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """``DELETE /im/v1/messages/:message_id``: the bot recalls its own message (within the tenant's
        recall window; past it Feishu answers a permanent error and only our copy goes)."""
        self.call("DELETE", f"im/v1/messages/{message_id}", doing="recall a message")

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        self._send("chat_id", chat_id, "interactive", render.widget_card(title, url), chat_id + url,
                   "post a widget link")

    def answer(self, event: InboundEvent, text: str) -> None:
        """Tell the presser privately what their button did (a refusal, "already approved by …"); the card
        update shows the outcome to everyone who has the card."""
        self.send_text(event.sender, text, idempotency_key=f"answer:{event.message_id}:{event.action_id}:{text}")

    def exchange_code(self, code: str, redirect_uri: str = "") -> str:
        """The open_id of a login-free code, through ``sso.im_login`` (which checks the tenant)."""
        from sso.im_login.base import get_exchange

        exchange = get_exchange(PLATFORM)
        if exchange is None:
            raise Unsupported("Feishu sign-in is not configured")
        return exchange.exchange(code, redirect_uri).external_id

    # --- inbound ----------------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        config = self.config
        if not (config.encrypt_key or config.verification_token):
            raise CallbackRejected("Feishu callbacks are not configured", status=404)
        outer = _json(body)
        if "encrypt" in outer and not config.encrypt_key:
            raise CallbackRejected("an encrypted callback but no FEISHU_ENCRYPT_KEY", status=404)
        if config.encrypt_key and "encrypt" not in outer:
            raise CallbackRejected("Feishu callbacks must be encrypted when an Encrypt Key is set")
        signed = bool(_header(headers, "X-Lark-Signature"))
        if config.encrypt_key and signed:
            # Verify before decrypting: nothing unsigned reaches the AES code, so no padding oracle.
            timestamp = _header(headers, "X-Lark-Request-Timestamp")
            crypto.verify_signature(_header(headers, "X-Lark-Signature"), timestamp,
                                    _header(headers, "X-Lark-Request-Nonce"), config.encrypt_key, body)
            _check_window(timestamp)
        if "encrypt" in outer:
            try:
                payload = _json(crypto.decrypt(config.encrypt_key, outer["encrypt"]))
            except CallbackRejected as exc:
                # Bad padding, bad JSON and a wrong token must look alike to an unsigned sender.
                raise CallbackRejected("the callback does not decrypt") from exc
        else:
            payload = outer
        token = payload.get("token") or (payload.get("header") or {}).get("token", "")
        if config.verification_token and token != config.verification_token:
            raise CallbackRejected("wrong verification token")
        if payload.get("type") == "url_verification":
            # Answered inline (within 1 s); Feishu may not sign this request: the Verification Token and
            # the Encrypt Key (only Feishu can encrypt to it) vouch for it.
            return InboundEvent(kind="url_verification", reply={"challenge": payload.get("challenge", "")})
        if config.encrypt_key and not signed:
            raise CallbackRejected("bad X-Lark-Signature")
        return event_from_payload(payload)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise CallbackRejected("the callback is not JSON", status=400) from exc
    if not isinstance(value, dict):
        raise CallbackRejected("the callback is not a JSON object", status=400)
    return value


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or ""


def _check_window(timestamp: str) -> None:
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError as exc:
        raise CallbackRejected("bad X-Lark-Request-Timestamp") from exc
    if age > settings.IM_CALLBACK_MAX_AGE:
        raise CallbackRejected("the callback's timestamp is outside the allowed window")


MENTION = re.compile(r"@_user_\d+\s*")


def event_from_payload(payload: dict[str, Any]) -> InboundEvent:
    """The InboundEvent of a verified, decrypted schema-2.0 callback."""
    header = payload.get("header") or {}
    event = payload.get("event") or {}
    kind = header.get("event_type", "")
    if kind == "card.action.trigger":
        operator = event.get("operator") or {}
        context = event.get("context") or {}
        value = (event.get("action") or {}).get("value") or {}
        action_id = value.get("action", "") if isinstance(value, dict) else str(value)
        return InboundEvent(
            kind="card_action", sender=operator.get("open_id", ""),
            tenant=header.get("tenant_key") or operator.get("tenant_key", ""),
            message_id=context.get("open_message_id", ""), action_id=action_id,
            chat_id=context.get("open_chat_id", ""), raw=payload,
            # Answer within 3 s; the decision is made by the task, then the card is patched.
            reply={"toast": {"type": "info", "content": _("Received. The card will show the result.")}},
        )
    if kind == "im.message.receive_v1":
        message = event.get("message") or {}
        sender = ((event.get("sender") or {}).get("sender_id") or {}).get("open_id", "")
        text = ""
        if message.get("message_type") == "text":
            try:
                text = json.loads(message.get("content") or "{}").get("text", "")
            except ValueError:
                text = ""
        return InboundEvent(
            kind="message", sender=sender, tenant=header.get("tenant_key", ""),
            message_id=message.get("message_id", ""), text=MENTION.sub("", text).strip(),
            chat_id=message.get("chat_id", "") if message.get("chat_type") == "group" else "", raw=payload,
        )
    return InboundEvent(kind="ignored", tenant=header.get("tenant_key", ""), raw=payload)
