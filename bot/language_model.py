"""Optional model backend: any OpenAI-compatible chat-completions endpoint, off by default.

Only asked when the parser did not understand a question. The model may only pick one of the typed
query functions below (the parser's own intents, read-only; never a decision) with arguments that
are checked against the vocabulary and the same patterns as the parser; the answer is then built by
the same selectors for the asker. It never sees data, only the question and the names it may choose.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from bot import parser
from bot.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

PERIODS = ["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "next_month",
           "this_quarter", "last_quarter", "this_year", "last_year"]
_NUMBER = {"document": re.compile(r"(PR|EC)-\d{4}-\d{4}"), "order": re.compile(r"SO-\d{4}-\d{4}")}


@dataclass(frozen=True)
class BackendConfig:
    url: str
    model: str
    api_key: str
    timeout: float


def config() -> BackendConfig | None:
    """The backend in use: admin's enabled row, else the BOT_MODEL_* settings, else None (off)."""
    from bot.models import ModelBackend

    row = ModelBackend.objects.filter(enabled=True).first()
    if row is not None:
        return BackendConfig(row.base_url, row.model_name, row.api_key, row.timeout)
    if settings.BOT_MODEL_URL:
        return BackendConfig(settings.BOT_MODEL_URL, settings.BOT_MODEL_NAME, settings.BOT_MODEL_API_KEY,
                             settings.BOT_MODEL_TIMEOUT)
    return None


def _names(vocab: Vocabulary, kind: str) -> list[str]:
    return sorted({value for (k, value) in vocab.labels if k == kind})


def tools(vocab: Vocabulary) -> list[dict[str, Any]]:
    def fn(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {"name": name, "description": description, "parameters": {
            "type": "object", "properties": properties, "additionalProperties": False}}}

    def enum(values: list[str]) -> dict[str, Any]:
        return {"type": "string", "enum": values}

    flag = {"type": "boolean"}
    return [
        fn("receivables", "Receivables (money customers owe), optionally overdue only or collected in a period.",
           {"project": enum(_names(vocab, "project")), "customer": enum(_names(vocab, "customer")),
            "overdue": flag, "collected": flag, "period": enum(PERIODS)}),
        fn("stock", "Stock of an item, in a warehouse, or items below their safety level.",
           {"sku": enum(_names(vocab, "sku")), "warehouse": enum(_names(vocab, "warehouse")), "below_safety": flag}),
        fn("orders", "Sales orders: one by number, or the asker's own, by status, customer or period.",
           {"order": {"type": "string", "pattern": _NUMBER["order"].pattern}, "mine": flag,
            "status": enum(["confirmed", "shipped", "delivered", "delayed"]),
            "customer": enum(_names(vocab, "customer")), "period": enum(PERIODS)}),
        fn("approvals_pending", "Documents waiting for the asker's approval.", {}),
        fn("approvals_status", "Status of one approval document and who has not approved it yet.",
           {"document": {"type": "string", "pattern": _NUMBER["document"].pattern}}),
        fn("help", "What the bot can answer.", {}),
    ]


_INTENTS = {"receivables": parser.RECEIVABLES, "stock": parser.STOCK, "orders": parser.ORDERS,
            "approvals_pending": parser.PENDING, "approvals_status": parser.STATUS, "help": parser.HELP}


def validate(name: str, arguments: Any, vocab: Vocabulary) -> tuple[str, dict[str, Any]] | None:
    """The intent and entities if the call is one of ours with acceptable arguments; else None."""
    if name not in _INTENTS or not isinstance(arguments, dict):
        return None
    spec = next(t["function"]["parameters"]["properties"] for t in tools(vocab) if t["function"]["name"] == name)
    entities: dict[str, Any] = {}
    for key, value in arguments.items():
        rule = spec.get(key)
        if rule is None:
            return None  # an argument we did not offer
        if rule.get("type") == "boolean":
            if not isinstance(value, bool):
                return None
            if value:
                entities[key] = True
        elif not isinstance(value, str) or ("enum" in rule and value not in rule["enum"]) or (
                "pattern" in rule and not re.fullmatch(rule["pattern"], value)):
            return None
        else:
            entities[key] = value
    return _INTENTS[name], entities


def choose(text: str, vocab: Vocabulary, backend: BackendConfig | None = None) -> tuple[str, dict[str, Any]] | None:
    """Ask the model which query answers ``text``; None when off, unsure, unreachable or invalid."""
    backend = backend or config()
    if backend is None:
        return None
    headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
    body = {
        "model": backend.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You route questions about a company's ERP data to one function. "
                                          "Call exactly one function, or none if no function fits."},
            {"role": "user", "content": text[:1000]},
        ],
        "tools": tools(vocab),
    }
    try:
        response = httpx.post(f"{backend.url.rstrip('/')}/chat/completions", json=body, headers=headers,
                              timeout=backend.timeout)
        response.raise_for_status()
        calls = response.json()["choices"][0]["message"].get("tool_calls") or []
        if not calls:
            return None
        call = calls[0]["function"]
        arguments = call.get("arguments") or "{}"
        return validate(call["name"], json.loads(arguments) if isinstance(arguments, str) else arguments, vocab)
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        logger.warning("bot model backend failed: %s", exc)
        return None
