"""Inbound Slack requests: the v0 signature, and what an interactivity or Events API request means.

Signature (api.slack.com/authentication/verifying-requests-from-slack): ``X-Slack-Signature`` is
``"v0=" + hex(HMAC-SHA256(signing secret, "v0:{X-Slack-Request-Timestamp}:{raw body}"))``; requests
older (or newer) than five minutes are refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from im.platforms.base import CallbackRejected, InboundEvent
from im.platforms.slack.render import OPEN_LINK

WINDOW_SECONDS = 5 * 60


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    """Raise CallbackRejected unless the request is signed with ``secret`` within the window."""
    if not secret:
        raise CallbackRejected("SLACK_SIGNING_SECRET is not set: refusing unverifiable requests")
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("x-slack-request-timestamp", "")
    given = lower.get("x-slack-signature", "")
    if not timestamp.isdigit() or not given:
        raise CallbackRejected("missing Slack signature headers")
    if abs((time.time() if now is None else now) - int(timestamp)) > WINDOW_SECONDS:
        raise CallbackRejected("Slack request timestamp outside the 5-minute window")
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise CallbackRejected("bad Slack signature")


def parse(body: bytes, headers: Mapping[str, str]) -> InboundEvent:
    """What a verified request means (see ``InboundEvent``)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "application/json" in lower.get("content-type", ""):
        try:
            data = json.loads(body)
        except ValueError:
            raise CallbackRejected("body is not JSON", status=400) from None
        return _event(data)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if "payload" not in form:
        return InboundEvent(kind="ignored", raw=form)  # ssl_check and slash commands we do not offer
    try:
        payload = json.loads(form["payload"])
    except ValueError:
        raise CallbackRejected("payload is not JSON", status=400) from None
    return _interaction(payload)


def _interaction(payload: dict[str, Any]) -> InboundEvent:
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        return InboundEvent(kind="ignored", raw=payload)
    action = payload["actions"][0]
    if action.get("action_id") == OPEN_LINK:
        return InboundEvent(kind="ignored", raw=payload)  # the link button opens a URL; nothing to do
    container = payload.get("container") or {}
    channel = container.get("channel_id") or (payload.get("channel") or {}).get("id", "")
    ts = container.get("message_ts") or (payload.get("message") or {}).get("ts", "")
    user = payload.get("user") or {}
    return InboundEvent(
        kind="card_action",
        sender=user.get("id", ""),
        tenant=(payload.get("team") or {}).get("id", "") or user.get("team_id", ""),
        message_id=f"{channel} {ts}",
        action_id=str(action.get("value") or action.get("action_id", "")),
        chat_id=channel,
        raw=payload,
    )


def _event(data: dict[str, Any]) -> InboundEvent:
    if data.get("type") == "url_verification":
        return InboundEvent(kind="url_verification", reply={"challenge": data.get("challenge", "")}, raw=data)
    if data.get("type") != "event_callback":
        return InboundEvent(kind="ignored", raw=data)
    event = data.get("event") or {}
    # Only what people write: not the bot's own messages, edits, joins…
    if event.get("type") not in ("message", "app_mention") or event.get("bot_id") or event.get("subtype"):
        return InboundEvent(kind="ignored", raw=data)
    return InboundEvent(
        kind="message",
        sender=event.get("user", ""),
        tenant=data.get("team_id", ""),
        text=event.get("text", ""),
        chat_id="" if event.get("channel_type") == "im" else event.get("channel", ""),
        message_id=f"{event.get('channel', '')} {event.get('ts', '')}",
        raw=data,
    )
