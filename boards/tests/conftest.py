"""The demo world with the five scenarios' rules (as notifications/tests), and helpers for boards."""

from __future__ import annotations

import re

import pytest

from tests.conftest import (  # noqa: F401
    chromium,
    committed,
    connector,
    demo,
    send_event,
    service_missing,
    users,
)


@pytest.fixture
def scenarios(demo, connector, committed):  # noqa: F811
    from notifications.demo import setup_notifications_demo

    with committed():
        setup_notifications_demo(connector)
    return connector


CODE_RE = re.compile(r"\b(\d{8})\b")


def code_in(body: str) -> str:
    match = CODE_RE.search(body)
    assert match, body
    return match.group(1)
