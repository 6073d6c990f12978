"""The board scenario on a real Tryton (``manage.py demo_tryton`` and the Tryton board tests)."""

from __future__ import annotations

from typing import Any

TRYTON_RULE = "Tryton 库存变动 → 采购员, 可建群邀请供应商 / Tryton stock change → buyer, group with the supplier"


def setup_tryton_board_rule(buyer: Any) -> Any:
    """A rule announcing stock changes of Tryton's items to ``buyer``, whose group invites the item's
    supplier (Tryton's ``purchase.product_supplier`` contact) as a guest and the holders of Tryton's
    "Stock" group as members; the buyer may open groups. Core Tryton keeps no safety level (order
    points are the ``stock_supply`` module), so the rule cannot wait for a fall below one."""
    from notifications.models import NotificationRule
    from sso.models import PermissionRule

    rule, _created = NotificationRule.objects.get_or_create(name=TRYTON_RULE, defaults={
        "event_type": "erp.stock.changed", "group_mode": "button", "group_supplier_contact": True,
        "group_roles": ["Stock"], "group_fields": ["sku", "name", "warehouse_name", "available"],
        "member_actions": ["confirm_delivery", "expedite"], "guest_actions": ["confirm_delivery"]})
    rule.users.add(buyer)
    opens, _created = PermissionRule.objects.get_or_create(name="Tryton: buyers open groups",
                                                           defaults={"actions": ["groups.create"]})
    opens.users.add(buyer)
    return rule
