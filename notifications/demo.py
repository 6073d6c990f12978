"""The five scenarios' rules and groups for the demo (``manage.py demo`` and the scenario tests).

Kept out of ``portal.demo.setup_demo`` on purpose: the other tests run on the plain demo world.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from notifications.groups import create_group, group_platform
from notifications.models import ChatGroup, NotificationRule
from sso.models import PermissionRule

SALES_CUSTOMER = "华东电子"

RULES = [
    {
        "name": "① 紧急采购批准 → 仓库备货, 销售群 / Urgent PR approved → prepare goods, sales group",
        "event_type": "erp.approval.decided", "kinds": ["purchase_requisition"], "urgent_only": True,
        "statuses": ["approved"], "erp_roles": ["warehouse_keeper"], "priority": "high",
        "title_zh": "请备货: {number} {lines}", "title_en": "Prepare goods: {number} {lines}",
        "body_zh": "{title} 已批准, 请准备出库。", "body_en": "{title} was approved: please prepare the goods.",
        "fields": ["number", "lines", "project"], "group_fields": ["number", "title", "status", "project"],
    },
    {
        "name": "② 低库存 → 采购员与计划员, 一键建群 / Low stock → buyer and planner, one-tap group",
        "event_type": "erp.stock.changed", "below_safety_only": True, "erp_roles": ["buyer", "warehouse_keeper"],
        "group_mode": "button", "group_roles": ["buyer", "warehouse_keeper"], "group_supplier_contact": True,
        "group_fields": ["sku", "name", "warehouse_name", "available", "safety_level"], "priority": "high",
        "body_zh": "可用 {available}, 安全库存 {safety_level}", "body_en": "Available {available}, safety level "
        "{safety_level}",
    },
    {
        "name": "③ 报销超出常规 → 审批人, 可讨论 / Unusual expense claim → approver, discuss",
        "event_type": "erp.approval.requested", "kinds": ["expense_claim"], "unusual_factor": Decimal("1.5"),
        "to_approvers": True, "discuss_action": True,
        "title_zh": "报销超出常规: {number} {title}", "title_en": "Unusual expense claim: {number} {title}",
        "body_zh": "金额 {currency} {amount}, 高于同类报销的通常范围。",
        "body_en": "{currency} {amount}: above the usual range of such claims.",
    },
    {
        "name": "④ 订单状态 → 销售与客户销售群 / Order status → sales rep and customer's group",
        "event_type": "erp.order.status_changed", "to_sales_rep": True, "to_customer_group": True,
        "group_fields": ["number", "customer", "status", "delivery_date"],
    },
    {
        "name": "⑤ 待审批: 4 小时提醒, 24 小时升级 / Pending approvals: remind 4 h, escalate 24 h",
        "event_type": "erp.approval.requested", "to_approvers": True, "initial_card": False,
        "remind_after_hours": 4, "escalate_after_hours": 24, "escalate_to_roles": ["finance_manager"],
        "quiet_start": dt.time(22, 0), "quiet_end": dt.time(8, 0), "working_days": [0, 1, 2, 3, 4],
    },
]


def setup_notifications_demo(connector) -> dict[str, int]:
    """Idempotent: rules by name, the customer's sales group once, and the warehouse keeper's view rule."""
    User = get_user_model()
    with transaction.atomic():
        # "Prepare goods" needs the items: the warehouse keepers may view purchase requisitions.
        PermissionRule.objects.get_or_create(
            name="仓库管理员: 查看采购申请 (备货) / Warehouse keepers: view requisitions (prepare goods)",
            defaults={"connector": connector, "erp_roles": ["warehouse_keeper"], "actions": ["approvals.view"],
                      "document_kinds": ["purchase_requisition"]},
        )
        sales = ChatGroup.objects.filter(purpose=ChatGroup.Purpose.SALES, customer=SALES_CUSTOMER).first()
        if sales is None:
            members = [(u, "sales group member") for u in User.objects.filter(username__in=["chen.qi", "li.si"])]
            sales = create_group(
                name=f"销售群 · {SALES_CUSTOMER} / Sales group", purpose=ChatGroup.Purpose.SALES,
                platform=group_platform(None), key=f"sales:{SALES_CUSTOMER}", members=members, customer=SALES_CUSTOMER,
            )
        created = 0
        for spec in RULES:
            spec = dict(spec)
            rule, new = NotificationRule.objects.get_or_create(name=spec.pop("name"), defaults=spec)
            created += int(new)
            if new and rule.event_type == "erp.approval.decided":
                rule.chat_group = sales
                rule.save(update_fields=["chat_group"])
    return {"rules": created}
