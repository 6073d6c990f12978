"""Log formatting: one JSON object per line (production) or one readable line (dev), both with
the request and event ids, both passed through ``redact()`` so a secret never reaches the log."""

from __future__ import annotations

import logging
import re

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from portal.observability import context

# key=value in URLs and messages (WeCom and DingTalk put app secrets in query strings), JSON fields
# with secret names, bearer tokens, Standard Webhooks secrets, Slack tokens. The value classes stop
# at quotes and backslashes so a redacted JSON line stays valid JSON.
_REDACTED_KEYS = (
    r"access_token|refresh_token|id_token|corpsecret|appsecret|app_secret|client_secret|secret|password|"
    r"passwd|token|api_key|apikey|authorization|signature|webhook-signature|code_verifier"
)
_PATTERNS = [
    (re.compile(rf"(?i)\b({_REDACTED_KEYS})=[^&\s\"'\\,;]+"), r"\1=***"),
    (re.compile(rf"(?i)\"({_REDACTED_KEYS})\"\s*:\s*\"(?:[^\"\\]|\\.)*\""), r'"\1": "***"'),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_***"),
    (re.compile(r"\bxox[abpre]-[A-Za-z0-9-]+"), "xox*-***"),
    # Card-link tokens travel in the path (/s/<token>/): an untapped one in a log line is a key.
    (re.compile(r"/s/[A-Za-z0-9_:-]{16,}"), "/s/***"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Puts the current request and event ids on every record (attach it to the handler, so
    records of every library get them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            # A bound id wins over an ``extra`` of the same name; an unbound one keeps the extra.
            if value or not getattr(record, name, ""):
                setattr(record, name, value or "-")
        return True


class PlainFormatter(logging.Formatter):
    """``time level logger [request event] message``: for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s %(event_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the ids, and any
    ``extra`` fields of the call."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}{request_id}{event_id}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            json_ensure_ascii=False,
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class StepFormatter(logging.Formatter):
    """``HH:MM:SS  message  key=value…``: the demo console's one line per loop step (DEMO_CONSOLE=1),
    with the step's own ``extra`` fields and none of the ids a newcomer does not need."""

    _FIELDS = ("event_type", "platform", "outcome", "via", "document_id", "decision_id", "delivery_id", "attempts")

    def __init__(self) -> None:
        super().__init__("%(asctime)s  %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        details = "  ".join(f"{name}={value}" for name in self._FIELDS if (value := getattr(record, name, "")))
        return redact(f"{line}  {details}" if details else line)
