"""A generic outgoing webhook: every card (and edit, text, group…) POSTed as JSON to one URL, signed
per Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), for any IM or
system the portal has no adapter for.

- Body: ``{"type": "card.send", "timestamp": …, "data": {…}}``; types ``card.send``,
  ``card.update``, ``text.send``, ``thread.reply``, ``group.create``, ``group.add_members``,
  ``chat.card``, ``chat.widget``. The card is ``Card.to_dict()``.
- Idempotency: ``webhook-id`` is a hash of the delivery's idempotency key, so a retried send carries
  the same id and the receiver can drop the duplicate (the spec's intended use of the id).
- Answers: 2xx is sent (a JSON ``message_id``/``chat_id`` in the answer is used when given); 429
  (honouring Retry-After), 408 and 5xx are transient; other 4xx permanent.
- Inbound: ``POST /api/im/webhook/callback`` verified the same way with the same secret:
  ``{"type": "card.action", "data": {"sender", "message_id", "action_id"}}`` or ``"message"``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from django.conf import settings
from standardwebhooks import Webhook, WebhookVerificationError

from im.cards import Card
from im.platforms.base import (
    ANSWER,
    CALLBACKS,
    GROUPS,
    TEXT,
    THREADS,
    WIDGETS,
    CallbackRejected,
    GroupChat,
    InboundEvent,
    SentMessage,
    TransportError,
    linked_external_id,
)
from portal.http import KeptAliveTransport

PLATFORM = "webhook"


# One transport (connection pool) per process: building one loads the TLS trust store, which took half
# of a worker's time per card when every send built its own (bench/run.py, py-spy); shared, it also
# keeps connections to the receiver alive. httpx transports are thread-safe; Celery's pool processes
# each build their own after the fork, on their first send. A send goes to the transport itself, not
# through an httpx.Client: the client's cookie jar, auth and redirect steps (none of which a signed
# webhook uses; redirects are not followed either way) were about a fifth of a send's CPU. The transport
# is ``portal.http``'s, over ``http.client``: a post costs about two thirds of httpx's own transport.
_shared_transport: list[httpx.BaseTransport] = []
_USER_AGENT = f"python-httpx/{httpx.__version__}"


def shared_transport() -> httpx.BaseTransport:
    if not _shared_transport:
        _shared_transport.append(KeptAliveTransport())
    return _shared_transport[0]


def webhook_id(key: str) -> str:
    """The same idempotency key always gives the same ``webhook-id``; no key gives a fresh one."""
    return "msg_" + (hashlib.sha256(key.encode()).hexdigest()[:32] if key else uuid.uuid4().hex)


class WebhookAdapter:
    platform = PLATFORM
    capabilities = frozenset({THREADS, TEXT, GROUPS, WIDGETS, CALLBACKS, ANSWER})
    default_transport: Any = None  # tests put an httpx.MockTransport here

    def __init__(self, transport: httpx.BaseTransport | None = None, *, url: str | None = None,
                 secret: str | None = None) -> None:
        self.url = settings.IM_WEBHOOK_URL if url is None else url
        self.secret = settings.IM_WEBHOOK_SECRET if secret is None else secret
        self._transport = transport or self.default_transport

    def _webhook(self) -> Webhook:
        if not self.secret:
            raise TransportError("IM_WEBHOOK_SECRET is not set", permanent=True)
        try:
            return Webhook(self.secret)
        except Exception as exc:  # the library raises a bare error on a malformed whsec_ secret
            raise TransportError(f"IM_WEBHOOK_SECRET is not a valid secret: {exc}", permanent=True) from exc

    def post(self, event_type: str, data: dict[str, Any], *, key: str) -> dict[str, Any]:
        """POST one signed event; the receiver's JSON answer (or {})."""
        if not self.url:
            raise TransportError("IM_WEBHOOK_URL is not set", permanent=True)
        now = dt.datetime.now(dt.UTC)
        body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data}, ensure_ascii=False)
        msg_id = webhook_id(key)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook().sign(msg_id, now, body),
            "content-type": "application/json",
            "user-agent": _USER_AGENT,  # what the httpx.Client sent before
        }
        transport = self._transport or shared_transport()
        request = httpx.Request("POST", self.url, content=body.encode(), headers=headers,
                                extensions={"timeout": httpx.Timeout(settings.IM_WEBHOOK_TIMEOUT).as_dict()})
        try:
            response = transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise TransportError(f"{event_type}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            answer = answer if isinstance(answer, dict) else {}
            answer.setdefault("webhook_id", msg_id)
            return answer
        detail = f"{event_type}: HTTP {status} {response.text[:200]}".strip()
        if status == 429:
            try:
                retry_after = float(response.headers.get("retry-after", ""))
            except ValueError:
                retry_after = None
            raise TransportError(detail, retry_after=retry_after)
        raise TransportError(detail, permanent=not (status >= 500 or status == 408))

    # --- the interface ----------------------------------------------------------------------------
    def address_of(self, user: Any) -> str | None:
        """A linked webhook identity, else the portal username: the receiver maps it to its own ids."""
        return linked_external_id(user, PLATFORM) or user.get_username()

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        answer = self.post("card.send", {"address": address, "card": card.to_dict(),
                                         "idempotency_key": idempotency_key}, key=idempotency_key)
        return SentMessage(message_id=str(answer.get("message_id") or answer["webhook_id"]))

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        data = {"address": address, "message_id": message_id, "card": card.to_dict()}
        # The same edit retried has the same id; a different card is a new event.
        self.post("card.update", data, key="update:" + json.dumps(data, sort_keys=True, ensure_ascii=False))

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        answer = self.post("text.send", {"address": address, "text": text}, key=idempotency_key)
        return SentMessage(message_id=str(answer.get("message_id") or answer["webhook_id"]))

    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        answer = self.post("thread.reply", {"address": address, "message_id": message_id, "text": text}, key="")
        return SentMessage(message_id=str(answer.get("message_id") or answer["webhook_id"]))

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        answer = self.post("group.create", {"name": name, "members": members}, key=idempotency_key)
        if not answer.get("chat_id"):
            raise TransportError("group.create: the receiver answered without a chat_id", permanent=True)
        return GroupChat(chat_id=str(answer["chat_id"]))

    def add_members(self, chat_id: str, members: list[str]) -> None:
        self.post("group.add_members", {"chat_id": chat_id, "members": members}, key="")

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        answer = self.post("chat.card", {"chat_id": chat_id, "card": card.to_dict()}, key=idempotency_key)
        return SentMessage(message_id=str(answer.get("message_id") or answer["webhook_id"]))

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        self.post("chat.widget", {"chat_id": chat_id, "title": title, "url": url}, key="")

    # --- inbound ----------------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        lower = {k.lower(): v for k, v in headers.items()}
        try:
            # Checks the signature and that the timestamp is within 5 minutes (the spec's tolerance).
            self._webhook().verify(body, lower, json_parse=False)
        except TransportError as exc:
            raise CallbackRejected(str(exc)) from exc
        except (WebhookVerificationError, ValueError) as exc:
            raise CallbackRejected(f"bad webhook signature: {exc}") from exc
        try:
            data = json.loads(body)
        except ValueError:
            raise CallbackRejected("body is not JSON", status=400) from None
        if not isinstance(data, dict):
            raise CallbackRejected("body is not a JSON object", status=400)
        event = data.get("data") or {}
        if data.get("type") == "card.action":
            return InboundEvent(kind="card_action", sender=str(event.get("sender", "")),
                                tenant=str(event.get("tenant", "")), message_id=str(event.get("message_id", "")),
                                action_id=str(event.get("action_id", "")), raw=data)
        if data.get("type") == "message":
            return InboundEvent(kind="message", sender=str(event.get("sender", "")), text=str(event.get("text", "")),
                                chat_id=str(event.get("chat_id", "")), raw=data)
        return InboundEvent(kind="ignored", raw=data)

    def answer(self, event: InboundEvent, text: str) -> None:
        self.post("action.result", {"address": event.sender, "message_id": event.message_id, "text": text}, key="")
