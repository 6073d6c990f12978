"""Test helper for contract-tested adapters: an httpx.MockTransport that answers from a routing
function or recorded fixtures and keeps every request, so tests assert what was sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx


def recorded(fixtures: Path, name: str) -> httpx.Response:
    """A documented answer kept as ``{"status", "headers", "body"}`` in ``fixtures/<name>.json``."""
    data = json.loads((fixtures / f"{name}.json").read_text())
    body = data["body"]
    if isinstance(body, str):
        return httpx.Response(data["status"], headers=data["headers"], text=body)
    return httpx.Response(data["status"], headers=data["headers"], json=body)


class FakeApi:
    """``answer(request) -> httpx.Response``; ``requests`` holds what the adapter sent, in order."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]
