"""The portal on a real local Tryton: ``make demo ERP=tryton`` and ``bench/tryton_loop.py``.

Builds (once, cached under var/tryton/) the seeded Tryton database the connector tests use, runs
``trytond`` on it, configures a ``tryton`` connector polling it every few seconds, and links portal
users to the Tryton logins li.si (approver), zhang.san (requester) and wang.wu.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model

from erp.models import Connector, ConnectorSettings

from .client import TrytonClient
from .connector import TrytonConnector
from .seed_tryton import company_today
from .testing import TrytonServer

DEMO_PASSWORD = "demo"  # noqa: S105 - portal passwords of the demo users, printed by the command
EVENT_TYPES = [choice for choice, _label in ConnectorSettings.EVENT_TYPE_CHOICES]


def setup_tryton_demo(server: TrytonServer, *, slug: str = "tryton", poll_interval: int = 5) -> ConnectorSettings:
    """The connector, its settings (cursor reset when the Tryton database is new), users and rules."""
    from sso.models import PermissionRule, Profile
    from sso.services import link_erp_login

    connector, _created = Connector.objects.get_or_create(slug=slug, defaults={"name": "Tryton", "kind": "tryton"})
    settings = ConnectorSettings.objects.filter(connector=connector).first() or ConnectorSettings(connector=connector)
    if settings.base_url != server.base_url:
        settings.cursor = None  # another trytond (port) than last time: read everything once
    settings.base_url, settings.database, settings.login = server.base_url, server.database, "li.si"
    settings.set_password(server.password)
    settings.poll_interval, settings.event_types = poll_interval, EVENT_TYPES
    settings.save()

    erp = TrytonConnector(settings)
    try:
        accounts = erp.users()
    finally:
        erp.client.close()
    User = get_user_model()
    users = []
    for account in accounts:
        user, created = User.objects.get_or_create(username=account.login, defaults={"first_name": account.name})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        Profile.objects.get_or_create(user=user)
        link_erp_login(user, connector, account.login, list(account.roles), employee=account.employee)
        users.append(user)
    approvers, _c = PermissionRule.objects.get_or_create(
        name=f"{slug}: own approvals", defaults={"actions": ["approvals.view", "approvals.decide"],
                                                 "own_documents": True, "document_kinds": ["purchase_requisition"]})
    readers, _c = PermissionRule.objects.get_or_create(
        name=f"{slug}: stock, orders, receivables",
        defaults={"actions": ["inventory.view", "orders.view", "receivables.view", "bot.query"]})
    approvers.users.add(*users)
    readers.users.add(*users)
    if not User.objects.filter(username="admin").exists():
        User.objects.create_superuser("admin", "admin@example.com", "admin")  # noqa: S106 - printed demo login
    return settings


def new_requisition(server: TrytonServer, description: str = "备件", qty: int = 2, price: str = "880.50",
                    *, requester: TrytonClient | None = None) -> str:
    """A requisition made and submitted by zhang.san, as in Tryton's own client; its number."""
    client = requester or TrytonClient(server.base_url, server.database, "zhang.san", server.password)
    seed: dict[str, Any] = server.seed
    try:
        [req_id] = client.model("purchase.requisition", "create", [{
            "description": description,
            "employee": seed["employees"]["zhang.san"],
            "supply_date": company_today() + dt.timedelta(days=3),
            "warehouse": seed["warehouses"]["SH"],
            "currency": seed["currency"],
            "lines": [["create", [{
                "product": seed["products"]["SKU-456"], "description": "导轨", "quantity": qty,
                "unit": seed["unit"], "unit_price": Decimal(price),
            }]]],
        }])
        client.model("purchase.requisition", "wait", [req_id])
        [row] = client.model("purchase.requisition", "read", [req_id], ["number"])
    finally:
        if requester is None:
            client.close()
    return row["number"]
