"""Build and sign CloudEvents the way an ERP (or the built-in demo ERP) sends them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from standardwebhooks import Webhook


def make_cloudevent(event_type: str, source: str, data: dict[str, Any], subject: str = "") -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    if subject:
        envelope["subject"] = subject
    return envelope


def sign(
    secret: str, body: bytes, *, webhook_id: str | None = None, timestamp: dt.datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(webhook_id, timestamp, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/cloudevents+json",
    }


def signed_request(secret: str, envelope: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(envelope, ensure_ascii=False).encode()
    return sign(secret, body), body
