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
    """The portal on a running Tryton (``setup_tryton_demo``) with a low-stock rule whose groups invite
    the item's supplier from Tryton, li.si as the buyer who gets the card and may open groups, the
    holders of Tryton's "Stock" group (li.si, wang.wu) as members; then a stock count of ``sku`` in
    Tryton, polled. Core Tryton keeps no safety level (stock_supply's order points are another
    module), so this rule announces every stock change rather than only a fall below. Returns the
    connector settings and the buyer."""
    from django.contrib.auth import get_user_model

    from erp.connectors.tryton.demo import setup_tryton_demo
    from erp.connectors.tryton.poll import poll
    from erp.connectors.tryton.testing import count_stock
    from notifications.models import NotificationRule
    from sso.models import PermissionRule

    settings = setup_tryton_demo(server)
    buyer = get_user_model().objects.get(username="li.si")
    rule = NotificationRule.objects.create(
        name="Tryton stock → buyer, group with the supplier", event_type="erp.stock.changed",
        group_mode="button", group_supplier_contact=True, group_roles=["Stock"],
        group_fields=["sku", "name", "warehouse_name", "available"],
        member_actions=["confirm_delivery", "expedite"], guest_actions=["confirm_delivery"])
    rule.users.add(buyer)
    PermissionRule.objects.create(name="Tryton buyers open groups", actions=["groups.create"]).users.add(buyer)
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

