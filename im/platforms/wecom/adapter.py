"""The WeCom (企业微信) adapter: application messages from a self-built app, by contract (no WeCom here).

Documented calls (developer.work.weixin.qq.com, 服务端API › 消息推送 / 应用消息 / 群聊会话):
- ``GET /cgi-bin/gettoken?corpid&corpsecret`` → ``access_token`` (7200 s), cached once per app; the login-free
  code exchange (``exchange.py``) asks this adapter for it.
- ``POST /cgi-bin/message/send`` ``{touser, msgtype: template_card|textcard|text, agentid, …,
  enable_duplicate_check, duplicate_check_interval}`` → ``{errcode, errmsg, invaliduser, msgid,
  response_code}``. ``invaliduser`` non-empty with errcode 0 means the person is not reachable.
- ``POST /cgi-bin/message/update_template_card`` ``{userids, agentid, response_code, button|template_card}``:
  each ``response_code`` (from the send, then from every button callback) works once, for 72 hours.
- ``POST /cgi-bin/appchat/create`` ``{name, owner, userlist, chatid}``, ``/appchat/update`` ``{chatid,
  add_user_list}``, ``/appchat/send`` ``{chatid, msgtype, …}`` (no template cards in group chats).
- ``POST /cgi-bin/message/recall`` ``{msgid}`` → ``{errcode, errmsg}``: recalls an app message sent in
  the last 24 hours (document 94867), used by retention.

Addressing: the member's userid (``ImIdentity(platform="wecom").external_id``). Message reference: the
card's ``task_id`` (derived from the delivery key), which the ``template_card_event`` callback carries
back. The latest ``response_code`` of each task is kept in the cache for its 72 hours: no table.
"""

from __future__ import annotations

import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

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
from im.platforms.httpjson import (
    QueryTokenAdapter,
    TokenRejected,
    clip,
    clip_bytes,
)
from im.platforms.wecom import render
from im.platforms.wecom.crypto import MsgCrypt, check_timestamp

logger = logging.getLogger(__name__)

PLATFORM = "wecom"
API = "https://qyapi.weixin.qq.com/cgi-bin"

# API frequency and concurrency limits. Above 30 messages a minute per member WeCom drops messages
# silently instead: the shared token bucket (settings.IM_RATE_LIMITS["wecom"]) keeps us under that.
RATE_LIMITED = {45009, 45033}
BUSY = {-1}  # 系统繁忙
TOKEN_REJECTED = {40014, 42001, 41001}  # invalid, expired, missing access_token
CHAT_EXISTS = 86215  # appchat/create with a chat id that exists: our own earlier attempt
# The documented limit is per member per minute; a minute is the shortest wait that can help.
RATE_LIMIT_WAIT = 60.0
RESPONSE_CODE_TTL = 72 * 3600
TEXTCARD_PREFIX = "textcard:"


def classify(status: int, headers: httpx.Headers, body: dict[str, Any], doing: str) -> TransportError | None:
    errcode = body.get("errcode", 0)
    if status >= 500:
        return TransportError(f"wecom {doing}: HTTP {status}")
    if errcode in (0, None) and status < 400:
        return None
    detail = f"wecom {doing}: {errcode} {body.get('errmsg', '')}".strip()
    if errcode in RATE_LIMITED:
        return TransportError(detail, retry_after=RATE_LIMIT_WAIT)
    if errcode in BUSY:
        return TransportError(detail)
    if errcode in TOKEN_REJECTED:
        return TokenRejected(detail)
    # 60111 unknown userid, 81013 nobody valid, 60020 IP not allowed, 48002 API forbidden, 40003 bad userid…
    return TransportError(detail, permanent=True)


@dataclass(frozen=True)
class WeComConfig:
    corp_id: str
    secret: str
    agent_id: str
    token: str = ""  # callback Token
    aes_key: str = ""  # callback EncodingAESKey

    @classmethod
    def from_settings(cls) -> WeComConfig:
        from sso.im_login.base import app_config

        app = app_config(PLATFORM)
        if app is None or not app.client_id or not app.secret:
            raise TransportError("WeCom is not configured: set WECOM_CORP_ID and WECOM_SECRET", permanent=True)
        return cls.from_app(app)

    @classmethod
    def from_app(cls, app: Any) -> WeComConfig:
        """From the allauth app (``sso.im_login.base.AppConfig``) the sign-in uses too."""
        return cls(corp_id=app.client_id, secret=app.secret, agent_id=str(app.settings.get("agent_id") or ""),
                   token=settings.WECOM_TOKEN, aes_key=settings.WECOM_AES_KEY)


def _response_code_key(task_id: str) -> str:
    return f"im:wecom:response-code:{task_id}"


def remember_response_code(task_id: str, code: str) -> None:
    """The newest ``response_code`` of a card wins: each one can update the card once."""
    if task_id and code:
        cache.set(_response_code_key(task_id), code, RESPONSE_CODE_TTL)


class WeComAdapter(LinkedIdentityAddress, QueryTokenAdapter):
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, RECALL, CALLBACKS, ANSWER})
    config_class = WeComConfig
    classify = staticmethod(classify)
    cache_slot = "access_token"

    api_base = API

    # --- plumbing ---------------------------------------------------------------------------------
    def token_credentials(self, config: WeComConfig) -> dict[str, str]:
        return {"corpid": config.corp_id, "corpsecret": config.secret}

    def token_owner(self, config: WeComConfig) -> tuple[str, str]:
        return config.corp_id, config.secret

    @property
    def agent_id(self) -> int | str:
        value = self.config.agent_id
        return int(value) if value.isdigit() else value

    def _send(self, touser: str, msgtype: str, content: dict[str, Any], *, doing: str) -> dict[str, Any]:
        body = self.post("message/send", {
            "touser": touser,
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: content,
            # WeCom drops an identical message to the same person within the interval: a retried
            # delivery after a crash does not post twice.
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800,
        }, doing=doing)
        if body.get("invaliduser"):
            raise TransportError(f"wecom {doing}: unknown or unreachable member {body['invaliduser']}", permanent=True)
        return body

    # --- required ---------------------------------------------------------------------------------
    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        if not card.actions:
            body = self._send(address, "textcard", render.textcard(card), doing="send a textcard")
            # No task id, no callbacks: a reference that only says what it was.
            return SentMessage(message_id=TEXTCARD_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40],
                               recall_id=str(body.get("msgid") or ""))
        task_id = render.task_id_for(idempotency_key)
        body = self._send(address, "template_card", render.template_card(card, task_id), doing="send a card")
        remember_response_code(task_id, body.get("response_code", ""))
        return SentMessage(message_id=task_id, recall_id=str(body.get("msgid") or ""))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        if message_id.startswith(TEXTCARD_PREFIX):
            raise TransportError("WeCom cannot edit a textcard message", permanent=True)
        code = cache.get(_response_code_key(message_id))
        if not code:
            raise TransportError("no unused WeCom response_code for this card (they last 72 hours)", permanent=True)
        payload: dict[str, Any] = {"userids": [address], "agentid": self.agent_id, "response_code": code}
        if card.actions:
            payload["template_card"] = render.template_card(card, message_id)
        else:
            # Decided: the buttons become one unclickable label with the outcome ("已由 李四 批准").
            payload["button"] = {"replace_name": clip(card.status_label, 10) if card.status_label else "—"}
        self.post("message/update_template_card", payload, doing="update a card")
        cache.delete(_response_code_key(message_id))  # used up

    # --- capabilities -----------------------------------------------------------------------------
    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        raise Unsupported("WeCom application messages have no threads")

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        body = self._send(address, "text", {"content": clip_bytes(text, 2048)}, doing="send a text")
        return SentMessage(message_id=str(body.get("msgid") or idempotency_key), recall_id=str(body.get("msgid") or ""))

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        if len(members) < 2:
            raise Unsupported("a WeCom group chat needs at least two members")
        # Our own chat id (letters and digits, at most 32): a retried create finds the first chat.
        chat_id = "portal" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:26]
        try:
            self.post("appchat/create", {"name": clip(name, 50), "owner": members[0], "userlist": members,
                                         "chatid": chat_id}, doing="create a group chat")
        except TransportError as exc:
            if f": {CHAT_EXISTS} " not in str(exc):
                raise
        return GroupChat(chat_id=chat_id)

    def add_members(self, chat_id: str, members: list[str]) -> None:
        self.post("appchat/update", {"chatid": chat_id, "add_user_list": members}, doing="add group members")

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        # Group chats take no template cards: a textcard with the link; decisions happen on the page.
        self.post("appchat/send", {"chatid": chat_id, "msgtype": "textcard", "textcard": render.textcard(card),
                                   "safe": 0}, doing="send a card to a group")
        return SentMessage(message_id=TEXTCARD_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40])

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """``message/recall`` with the ``msgid`` message/send answered: WeCom recalls app messages for
        24 hours only, and group-chat (appchat) messages not at all."""
        if not recall_id:
            raise Unsupported("WeCom gave no msgid for this message: it cannot be recalled")
        self.post("message/recall", {"msgid": recall_id}, doing="recall a message")

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        self.post("appchat/send", {"chatid": chat_id, "msgtype": "textcard", "textcard": render.widget_card(title, url),
                                   "safe": 0}, doing="post a widget link")

    def answer(self, event: InboundEvent, text: str) -> None:
        """Tell the presser privately what their button did (a refusal, "already approved by …"); the card
        update shows the outcome to everyone who has the card."""
        self.send_text(event.sender, text, idempotency_key=f"answer:{event.message_id}:{event.action_id}:{text}")

    def exchange_code(self, code: str) -> str:
        """The userid of a login-free (OAuth) code, through ``sso.im_login`` (single use, 5 minutes)."""
        from sso.im_login.base import get_exchange

        exchange = get_exchange(PLATFORM)
        if exchange is None:
            raise Unsupported("WeCom sign-in is not configured")
        return exchange.exchange(code).external_id

    # --- inbound ----------------------------------------------------------------------------------
    def crypt(self) -> MsgCrypt:
        config = self.config
        return MsgCrypt(config.token, config.aes_key, config.corp_id)

    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        crypt = self.crypt()
        signature, timestamp, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
        echostr = query.get("echostr")
        if echostr is not None:  # GET: WeCom checks the URL when the admin saves it
            crypt.verify(signature, timestamp, nonce, echostr)
            return InboundEvent(kind="url_verification", reply=crypt.decrypt(echostr).decode())
        check_timestamp(timestamp, settings.IM_CALLBACK_MAX_AGE)
        encrypted = _xml_field(body, "Encrypt")
        crypt.verify(signature, timestamp, nonce, encrypted)
        message = _parse_xml(crypt.decrypt(encrypted))
        return event_from_message(message, tenant=self.config.corp_id)


def _parse_xml(data: bytes) -> dict[str, str]:
    # WeCom never sends a DOCTYPE; refusing one keeps entity tricks out of the parser.
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise CallbackRejected("unexpected XML", status=400)
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DOCTYPE (checked above), so no entities to expand
    except ET.ParseError as exc:
        raise CallbackRejected(f"bad XML: {exc}", status=400) from exc
    return {child.tag: (child.text or "").strip() for child in root}


def _xml_field(body: bytes, name: str) -> str:
    value = _parse_xml(body).get(name, "")
    if not value:
        raise CallbackRejected(f"no {name} in the callback", status=400)
    return value


MENTION = re.compile(r"@\S+\s*")


def event_from_message(message: dict[str, str], *, tenant: str) -> InboundEvent:
    """The InboundEvent of one decrypted WeCom callback message."""
    sender = message.get("FromUserName", "")
    kind = message.get("MsgType", "")
    if kind == "event" and message.get("Event") == "template_card_event":
        task_id = message.get("TaskId", "")
        remember_response_code(task_id, message.get("ResponseCode", ""))
        return InboundEvent(kind="card_action", sender=sender, tenant=tenant, message_id=task_id,
                            action_id=message.get("EventKey", ""), raw=message, reply="")
    if kind == "text":
        return InboundEvent(kind="message", sender=sender, tenant=tenant, text=message.get("Content", "").strip(),
                            message_id=message.get("MsgId", ""), raw=message, reply="")
    return InboundEvent(kind="ignored", sender=sender, tenant=tenant, raw=message, reply="")
