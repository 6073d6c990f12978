"""Contract tests of platforms that cannot run here: a fake platform answering with recorded answers.

``FakePlatform`` is an ``httpx.MockTransport`` handler: each ``(method, URL without query)`` gets a queue
of recorded responses (the last one repeats), and every request is kept so a test can assert exactly
what was sent (URL, query, JSON body, headers).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.cache import cache

from im.cards import Card, CardAction, CardField


def recorded(fixtures: Path, name: str) -> httpx.Response:
    data = json.loads((fixtures / f"{name}.json").read_text())
    return httpx.Response(data["status"], headers=data["headers"], json=data["body"])


class FakePlatform:
    def __init__(self, fixtures: Path) -> None:
        self.fixtures = fixtures
        self.answers: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.requests: list[httpx.Request] = []

    def answer(self, method: str, url: str, *names_or_responses: str | httpx.Response | Exception) -> None:
        self.answers[(method, url)].extend(names_or_responses)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, f"{request.url.scheme}://{request.url.host}{request.url.path}")
        queue = self.answers.get(key)
        if not queue:
            return httpx.Response(599, json={"unexpected": f"{key}"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer if isinstance(answer, httpx.Response) else recorded(self.fixtures, answer)

    def calls(self, path_part: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if path_part in r.url.path]

    @staticmethod
    def body(request: httpx.Request) -> dict[str, Any]:
        return json.loads(request.content)


def make_card(*, actions: bool = True, **extra: Any) -> Card:
    """The approval card the contract tests send, with ``extra`` fields replaced."""
    values = dict(
        topic="approval.1", title="采购申请: 伺服电机", status="pending", status_label="等待你审批",
        link="http://testserver/s/token-1/", link_label="打开", locale="zh-hans", amount="CNY 12,800.00",
        fields=[CardField("编号", "PR-2026-0900"), CardField("申请人", "zhang.san")],
        actions=[CardAction("approve", "批准", "primary"), CardAction("reject", "驳回", "danger")] if actions else [],
    )
    return Card(**{**values, **extra})


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    """Platform tokens and response codes live in the Django cache: none may leak between tests."""
    cache.clear()
    yield
    cache.clear()
