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


def setup_tryton_board(server, sku: str = "SKU-123", counted: int = 9):
    """The portal on a running Tryton as ``manage.py demo_tryton`` sets it up (``setup_tryton_demo``,
    ``boards.demo.setup_tryton_board_rule``: li.si the buyer, groups inviting the item's supplier from
    Tryton, the holders of Tryton's "Stock" group as members); then a stock count of ``sku`` in
    Tryton, polled. Returns the connector settings and the buyer."""
    from django.contrib.auth import get_user_model

    from boards.demo import setup_tryton_board_rule
    from erp.connectors.tryton.demo import setup_tryton_demo
    from erp.connectors.tryton.poll import poll
    from erp.connectors.tryton.testing import count_stock

    settings = setup_tryton_demo(server)
    buyer = get_user_model().objects.get(username="li.si")
    setup_tryton_board_rule(buyer)
    count_stock(server, sku, counted)
    poll(settings)
    return settings, buyer


def notice_about(user, sku: str, warehouse: str = "SH"):
    """The dev-inbox message of ``user`` announcing ``sku`` in ``warehouse`` (newest first)."""
    from im.platforms.devinbox.models import DevInboxMessage
    from inventory.models import StockLevel
    from notifications.models import Notification

    level = StockLevel.objects.get(sku=sku, warehouse=warehouse)
    topics = {f"notice.{pk}" for pk in Notification.objects.filter(subject_topic=f"stock.{level.pk}")
              .values_list("pk", flat=True)}
    return next(m for m in DevInboxMessage.objects.filter(recipient=user).order_by("-pk") if m.card["topic"] in topics)

