"""The DingTalk (钉钉) adapter: an internal app's work notifications and group chats, by contract.

Documented calls (open.dingtalk.com, 服务端 API):
- ``GET https://oapi.dingtalk.com/gettoken?appkey&appsecret`` → ``access_token`` (7200 s), cached once per app;
  the login-free exchange (``exchange.py``) asks this adapter for it.
- ``POST /topapi/message/corpconversation/asyncsend_v2`` ``{agent_id, userid_list, msg}`` → ``{errcode,
  task_id}``: a work notification. It is asynchronous: an unknown user only shows up later in
  ``getsendresult`` (not polled here). DingTalk delivers identical content to one person once a day,
  which also makes a retried send harmless.
- ``POST /topapi/message/corpconversation/status_bar/update`` ``{agent_id, task_id, status_value,
  status_bg}``: the only change DingTalk allows to a sent work notification (``oa`` messages).
- ``POST /chat/create`` ``{name, owner, useridlist}`` → ``chatid``; ``/chat/update`` ``{chatid,
  add_useridlist}``; ``/chat/send`` ``{chatid, msg}`` → ``messageId`` (group messages cannot be edited).
- Errors: ``errcode`` 0 is success; 90002/90018/90019 are frequency limits, -1 is "busy"; 88 carries a
  ``sub_code``; 40014/42001 an invalid or expired token; anything else (33012 bad userid, 60011 no
  permission, 34xxx chat errors) is permanent.

Message reference: the work notification's ``task_id``.
Not covered: DingTalk's template-based interactive cards (card instances with callback buttons), which
need a card template built in DingTalk's card builder; see docs/integration.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

from im.cards import Card
from im.platforms.base import (
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
from im.platforms.dingtalk import crypto, render
from im.platforms.httpjson import (
    QueryTokenAdapter,
    TokenRejected,
    clip,
)

logger = logging.getLogger(__name__)

PLATFORM = "dingtalk"
OAPI = "https://oapi.dingtalk.com"

RATE_LIMITED = {90002, 90018, 90019}
BUSY = {-1}
TOKEN_REJECTED = {40014, 42001}
RATE_LIMIT_WAIT = 5.0  # DingTalk blocks a throttled caller briefly (seconds to minutes)
GROUP_MEMORY_SECONDS = 7 * 24 * 3600


def classify(status: int, headers: httpx.Headers, body: dict[str, Any], doing: str) -> TransportError | None:
    errcode = body.get("errcode", 0)
    if status >= 500:
        return TransportError(f"dingtalk {doing}: HTTP {status}")
    if errcode in (0, None) and status < 400:
        return None
    detail = f"dingtalk {doing}: {errcode} {body.get('errmsg', '')}".strip()
    if errcode == 88:  # 鉴权异常: the real reason is in sub_code
        errcode = int(body["sub_code"]) if str(body.get("sub_code", "")).isdigit() else errcode
        detail = f"{detail} (sub_code {body.get('sub_code')}: {body.get('sub_msg', '')})"
    if errcode in RATE_LIMITED:
        return TransportError(detail, retry_after=RATE_LIMIT_WAIT)
    if errcode in BUSY:
        return TransportError(detail)
    if errcode in TOKEN_REJECTED:
        return TokenRejected(detail)
    return TransportError(detail, permanent=True)


@dataclass(frozen=True)
class DingTalkConfig:
    app_key: str
    app_secret: str
    corp_id: str
    agent_id: str
    token: str = ""  # event subscription token
    aes_key: str = ""  # event subscription aes_key

    @classmethod
    def from_settings(cls) -> DingTalkConfig:
        from sso.im_login.base import app_config

        app = app_config(PLATFORM)
        if app is None or not app.client_id or not app.secret:
            raise TransportError("DingTalk is not configured: set DINGTALK_CLIENT_ID and DINGTALK_CLIENT_SECRET",
                                 permanent=True)
        return cls.from_app(app)

    @classmethod
    def from_app(cls, app: Any) -> DingTalkConfig:
        """From the allauth app (``sso.im_login.base.AppConfig``) the sign-in uses too."""
        return cls(app_key=app.client_id, app_secret=app.secret, corp_id=str(app.settings.get("tenant") or ""),
                   agent_id=settings.DINGTALK_AGENT_ID, token=settings.DINGTALK_TOKEN,
                   aes_key=settings.DINGTALK_AES_KEY)


class DingTalkAdapter(LinkedIdentityAddress, QueryTokenAdapter):
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, RECALL, CALLBACKS})
    config_class = DingTalkConfig
    classify = staticmethod(classify)
    cache_slot = "access_token"

    api_base = OAPI

    # --- plumbing ---------------------------------------------------------------------------------
    def token_credentials(self, config: DingTalkConfig) -> dict[str, str]:
        return {"appkey": config.app_key, "appsecret": config.app_secret}

    def token_owner(self, config: DingTalkConfig) -> tuple[str, str]:
        return config.app_key, config.app_secret

    @property
    def agent_id(self) -> int | str:
        value = str(self.config.agent_id)
        if not value:
            raise TransportError("set DINGTALK_AGENT_ID to send work notifications", permanent=True)
        return int(value) if value.isdigit() else value

    def _notify(self, address: str, msg: dict[str, Any], *, doing: str) -> str:
        body = self.post("topapi/message/corpconversation/asyncsend_v2",
                         {"agent_id": self.agent_id, "userid_list": address, "msg": msg}, doing=doing)
        return str(body["task_id"])

    # --- required ---------------------------------------------------------------------------------
    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        if "," in address:  # userid_list is comma-separated: one recipient per delivery, always
            raise TransportError(f"not one DingTalk userid: {address!r}", permanent=True)
        return SentMessage(message_id=self._notify(address, render.oa_message(card), doing="send a card"))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        self.post("topapi/message/corpconversation/status_bar/update",
                  {"agent_id": self.agent_id, "task_id": int(message_id) if message_id.isdigit() else message_id,
                   **render.status_bar(card)}, doing="update a card")

    # --- capabilities -----------------------------------------------------------------------------
    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        raise Unsupported("DingTalk work notifications have no threads")

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        task_id = self._notify(address, {"msgtype": "text", "text": {"content": clip(text, 5000)}}, doing="send a text")
        return SentMessage(message_id=task_id)

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        # chat/create has no idempotency of its own: the chat made for a key is remembered, so a caller
        # retrying after a later step failed gets the same chat (an answer lost in transit can still
        # leave a duplicate chat behind).
        memory = f"im:dingtalk:group:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"
        known = cache.get(memory)
        if known:
            return GroupChat(chat_id=known)
        if not members:
            raise Unsupported("a DingTalk group chat needs members")
        body = self.post("chat/create", {"name": clip(name, 50), "owner": members[0], "useridlist": members},
                         doing="create a group chat")
        cache.set(memory, body["chatid"], GROUP_MEMORY_SECONDS)
        return GroupChat(chat_id=body["chatid"])

    def add_members(self, chat_id: str, members: list[str]) -> None:
        self.post("chat/update", {"chatid": chat_id, "add_useridlist": members}, doing="add group members")

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        body = self.post("chat/send", {"chatid": chat_id, "msg": render.action_card(card)},
                         doing="send a card to a group")
        return SentMessage(message_id=str(body.get("messageId", "")))

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """Recall a work notification by its task id (``corpconversation/recall``). Group messages sent
        with ``chat/send`` have no documented recall."""
        if not message_id.isdigit():
            raise Unsupported("only DingTalk work notifications (numeric task ids) can be recalled")
        self.post("topapi/message/corpconversation/recall",
                  {"agent_id": self.agent_id, "msg_task_id": int(message_id)}, doing="recall a message")

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        self.post("chat/send", {"chatid": chat_id, "msg": render.widget_card(title, url)}, doing="post a widget link")

    def exchange_code(self, code: str) -> str:
        """The userid of a login-free code (``dd.getAuthCode``, 5 minutes), through ``sso.im_login``."""
        from sso.im_login.base import get_exchange

        exchange = get_exchange(PLATFORM)
        if exchange is None:
            raise Unsupported("DingTalk sign-in is not configured")
        return exchange.exchange(code).external_id

    # --- inbound ----------------------------------------------------------------------------------
    def crypt(self) -> crypto.MsgCrypt:
        config = self.config
        return crypto.MsgCrypt(config.token, config.aes_key, config.app_key, config.corp_id)

    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        sign = headers.get("sign") or headers.get("Sign")
        if sign is not None:  # a robot message (HTTP mode)
            crypto.verify_robot_sign(headers.get("timestamp") or headers.get("Timestamp") or "", sign,
                                     self.config.app_secret)
            return event_from_robot(_json(body))
        crypt = self.crypt()
        signature = query.get("msg_signature") or query.get("signature") or ""
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        encrypted = str(_json(body).get("encrypt") or "")
        if not encrypted:
            raise CallbackRejected("no encrypt in the callback", status=400)
        crypt.verify(signature, timestamp, nonce, encrypted)
        crypto.check_timestamp(timestamp, settings.IM_CALLBACK_MAX_AGE, millis=True)
        event = _json(crypt.decrypt(encrypted))
        reply = crypto.success_reply(crypt)
        if event.get("EventType") == "check_url":
            return InboundEvent(kind="url_verification", reply=reply, raw=event)
        return InboundEvent(kind="ignored", tenant=str(event.get("CorpId", "")), reply=reply, raw=event)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise CallbackRejected("the callback is not JSON", status=400) from exc
    if not isinstance(value, dict):
        raise CallbackRejected("the callback is not a JSON object", status=400)
    return value


def event_from_robot(message: dict[str, Any]) -> InboundEvent:
    """A message to the app's robot, in a one-to-one chat (conversationType "1") or a group ("2")."""
    text = ((message.get("text") or {}).get("content") or "").strip() if message.get("msgtype") == "text" else ""
    return InboundEvent(
        kind="message" if text else "ignored",
        sender=str(message.get("senderStaffId", "")),
        tenant=str(message.get("senderCorpId") or message.get("chatbotCorpId") or ""),
        message_id=str(message.get("msgId", "")),
        text=text,
        chat_id=str(message.get("conversationId", "")) if str(message.get("conversationType")) == "2" else "",
        raw=message,
        reply={},
    )
