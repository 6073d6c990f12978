"""Believable demo data for the demo ERP, in Chinese and English.

``seed_demo_erp`` is idempotent: every row is looked up by its natural key (login, code, SKU,
number) and only created when missing, so a second run changes nothing and emits nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from . import emitter
from .models import (
    ApprovalDocument,
    Customer,
    DemoUser,
    DocumentState,
    ExpenseClaim,
    Item,
    Project,
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseRequisition,
    Receivable,
    RequisitionLine,
    SalesOrder,
    Stock,
    Supplier,
    Warehouse,
)
from .services import ensure_connector

D = Decimal

USERS = [
    # login, name, English name, title, roles, department
    ("zhang.san", "张三", "Zhang San", "采购员", ["buyer"], "采购部"),
    ("li.si", "李四", "Li Si", "采购经理", ["purchase_manager"], "采购部"),
    ("wang.wu", "王五", "Wang Wu", "财务经理", ["finance_manager"], "财务部"),
    ("zhao.liu", "赵六", "Zhao Liu", "仓库管理员", ["warehouse_keeper"], "仓储部"),
    ("chen.qi", "陈七", "Chen Qi", "销售", ["sales"], "销售部"),
]

PROJECTS = [
    ("PRJ-A", "项目A", "Project A"),
    ("PRJ-B", "项目B", "Project B"),
    ("PRJ-C", "项目C", "Project C"),
]

CUSTOMERS = [
    ("C001", "华东电子", "East China Electronics"),
    ("C002", "ACME Corp", "ACME Corp"),
    ("C003", "深圳创新科技", "Shenzhen Innovation Technology"),
]

SUPPLIERS = [
    ("S001", "上海精工电机有限公司", "刘伟 Liu Wei", "liu.wei@jinggong-motor.example.cn"),
    ("S002", "苏州恒通五金制品厂", "周敏 Zhou Min", "zhou.min@hengtong-hardware.example.cn"),
    ("S003", "Nordic Bearings AB", "Erik Lindqvist", "erik.lindqvist@nordic-bearings.example.com"),
]

ITEMS = [
    # sku, name, English name, unit, unit price, supplier, safety level
    ("SKU-123", "伺服电机", "Servo motor", "台", "3200.00", "S001", "10"),
    ("SKU-124", "伺服驱动器", "Servo drive", "台", "2650.00", "S001", "8"),
    ("SKU-201", "深沟球轴承 6205", "Deep groove ball bearing 6205", "个", "18.50", "S003", "200"),
    ("SKU-202", "直线导轨 HGR20", "Linear guide rail HGR20", "根", "460.00", "S003", "20"),
    ("SKU-305", "M8 内六角螺栓", "M8 hex socket bolt", "盒", "35.00", "S002", "50"),
    ("SKU-306", "不锈钢平垫片", "Stainless steel flat washer", "盒", "12.00", "S002", "40"),
    ("SKU-410", "PLC 控制器", "PLC controller", "台", "5800.00", "S001", "3"),
    ("SKU-512", "工业以太网交换机", "Industrial Ethernet switch", "台", "1450.00", "S001", "4"),
]

WAREHOUSES = [
    ("SH", "上海仓", "Shanghai warehouse"),
    ("SZ", "苏州仓", "Suzhou warehouse"),
]

STOCK = [
    # sku, warehouse, quantity, reserved — SKU-123@SH, SKU-201@SZ and SKU-305@SZ are below safety level
    ("SKU-123", "SH", "6", "4"),
    ("SKU-124", "SH", "12", "2"),
    ("SKU-201", "SH", "450", "0"),
    ("SKU-202", "SH", "36", "6"),
    ("SKU-305", "SH", "80", "10"),
    ("SKU-410", "SH", "5", "1"),
    ("SKU-512", "SH", "9", "0"),
    ("SKU-123", "SZ", "14", "0"),
    ("SKU-201", "SZ", "120", "30"),
    ("SKU-305", "SZ", "30", "0"),
    ("SKU-306", "SZ", "65", "5"),
]

REQUISITIONS: list[dict[str, Any]] = [
    {
        "number": "PR-2026-0042",
        "title": "紧急采购: 伺服电机",
        "project": "PRJ-A",
        "urgent": True,
        "lines": [("SKU-123", "4")],
        "state": DocumentState.WAITING,
        "age_days": 0,
    },
    {
        "number": "PR-2026-0043",
        "title": "直线导轨补货 (项目B 装配线)",
        "project": "PRJ-B",
        "urgent": False,
        "lines": [("SKU-202", "10")],
        "state": DocumentState.WAITING,
        "age_days": 1,
    },
    {
        "number": "PR-2026-0044",
        "title": "轴承及紧固件月度采购",
        "project": "PRJ-C",
        "urgent": False,
        "lines": [("SKU-201", "300"), ("SKU-305", "40")],
        "state": DocumentState.WAITING,
        "age_days": 2,
    },
    {
        "number": "PR-2026-0038",
        "title": "PLC 控制器采购",
        "project": "PRJ-A",
        "urgent": False,
        "lines": [("SKU-410", "2")],
        "state": DocumentState.APPROVED,
        "age_days": 6,
        "decided_days_ago": 5,
        "comment": "同意, 请尽快下单。",
    },
]

EXPENSE_CLAIMS: list[dict[str, Any]] = [
    {
        "number": "EC-2026-0107",
        "title": "客户拜访差旅费 — 华东电子",
        "requester": "chen.qi",
        "category": "差旅费",
        "project": "PRJ-A",
        "amount": "3860.00",
        "state": DocumentState.WAITING,
        "age_days": 1,
    },
    {
        "number": "EC-2026-0098",
        "title": "展会物料制作费",
        "requester": "chen.qi",
        "category": "市场推广",
        "project": "PRJ-B",
        "amount": "2150.00",
        "state": DocumentState.APPROVED,
        "age_days": 9,
        "decided_days_ago": 8,
        "comment": "",
    },
]

SALES_ORDERS = [
    # number, customer, status, amount, currency, delivery in days from today
    ("SO-2026-0815", "C001", SalesOrder.Status.SHIPPED, "86500.00", "CNY", 2),
    ("SO-2026-0816", "C002", SalesOrder.Status.DELAYED, "23400.00", "USD", -3),
    ("SO-2026-0821", "C003", SalesOrder.Status.CONFIRMED, "15800.00", "CNY", 14),
    ("SO-2026-0809", "C001", SalesOrder.Status.DELIVERED, "42000.00", "CNY", -10),
]

RECEIVABLES = [
    # invoice, customer, project, amount, paid, currency, due in days from today
    ("INV-2026-0301", "C001", "PRJ-A", "86500.00", "40000.00", "CNY", 20),  # partly paid
    ("INV-2026-0288", "C001", "PRJ-A", "32000.00", "0.00", "CNY", -12),  # overdue
    ("INV-2026-0290", "C002", "PRJ-B", "23400.00", "10000.00", "USD", -5),  # overdue, partly paid
    ("INV-2026-0305", "C003", "PRJ-B", "15800.00", "0.00", "CNY", 30),
    ("INV-2026-0270", "C003", "PRJ-C", "9200.00", "9200.00", "CNY", -40),  # paid
]


# Open purchase orders (number, supplier, buyer, [(sku, warehouse, qty, days until the promised date)]).
# SKU-124 is on order from two suppliers: a supplier's guest sees only its own line.
PURCHASE_ORDERS = [
    ("PO-2026-0301", "S001", "zhang.san", [("SKU-124", "SH", "10", 9), ("SKU-123", "SH", "6", 12)]),
    ("PO-2026-0302", "S002", "zhang.san", [("SKU-124", "SH", "4", 20)]),
    ("PO-2026-0303", "S003", "zhang.san", [("SKU-202", "SH", "30", 25)]),
]


M = TypeVar("M", bound=Model)


class _Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def get_or_create(self, key: str, model: type[M], defaults: dict[str, Any], **lookup: Any) -> M:
        obj, created = model._default_manager.get_or_create(defaults=defaults, **lookup)
        self.counts[key] = self.counts.get(key, 0) + int(created)
        return obj


def seed_demo_erp(emit: bool = True) -> dict[str, int]:
    """Create what is missing of the demo data; announce new waiting documents when ``emit``.

    The data commits first, then the events go out (as a real ERP fires webhooks after saving).
    An IntakeError from the portal propagates; the documents stay and can be re-sent from the
    console (services.resend_approval_requested).
    """
    now = timezone.now()
    today = timezone.localdate()
    c = _Counter()
    new_waiting: list[ApprovalDocument] = []

    with transaction.atomic():
        ensure_connector()
        for login, name, name_en, title, roles, department in USERS:
            c.get_or_create(
                "users",
                DemoUser,
                {
                    "name": name,
                    "name_en": name_en,
                    "title": title,
                    "roles": roles,
                    "department": department,
                    "email": f"{login}@demo-erp.example.com",
                },
                login=login,
            )
        projects = {
            code: c.get_or_create("projects", Project, {"name": name, "name_en": name_en}, code=code)
            for code, name, name_en in PROJECTS
        }
        customers = {
            code: c.get_or_create(
                "customers", Customer,
                # ACME is a house account (no sales rep): chen.qi does not see its orders or receivables.
                {"name": name, "name_en": name_en, "sales_rep": "" if code == "C002" else "chen.qi"}, code=code
            )
            for code, name, name_en in CUSTOMERS
        }
        suppliers = {
            code: c.get_or_create(
                "suppliers",
                Supplier,
                {"name": name, "contact_name": contact, "contact_email": email},
                code=code,
            )
            for code, name, contact, email in SUPPLIERS
        }
        items: dict[str, Item] = {}
        for sku, name, name_en, unit, price, supplier, safety in ITEMS:
            items[sku] = c.get_or_create(
                "items",
                Item,
                {
                    "name": name,
                    "name_en": name_en,
                    "unit": unit,
                    "unit_price": D(price),
                    "supplier": suppliers[supplier],
                    "safety_level": D(safety),
                },
                sku=sku,
            )
        warehouses = {
            code: c.get_or_create("warehouses", Warehouse, {"name": name, "name_en": name_en}, code=code)
            for code, name, name_en in WAREHOUSES
        }
        for sku, warehouse, qty, reserved in STOCK:
            c.get_or_create(
                "stock",
                Stock,
                {"quantity": D(qty), "reserved": D(reserved)},
                item=items[sku],
                warehouse=warehouses[warehouse],
            )

        for spec in REQUISITIONS:
            lines = [(items[sku], D(qty)) for sku, qty in spec["lines"]]
            requisition, created = PurchaseRequisition.objects.get_or_create(
                number=spec["number"],
                defaults={
                    "title": spec["title"],
                    "project": projects[spec["project"]],
                    "requester": "zhang.san",
                    "approvers": ["li.si"],
                    "amount": sum((item.unit_price * qty for item, qty in lines), D("0")),
                    "urgent": spec["urgent"],
                    "created_at": now - dt.timedelta(days=spec["age_days"], hours=2),
                    **_decision(spec, "li.si", now),
                },
            )
            c.counts["requisitions"] = c.counts.get("requisitions", 0) + int(created)
            if created:
                # Lines only with a new requisition: an existing one keeps whatever it has.
                RequisitionLine.add_to(requisition, lines)
                if requisition.state == DocumentState.WAITING:
                    new_waiting.append(requisition)

        for spec in EXPENSE_CLAIMS:
            claim, created = ExpenseClaim.objects.get_or_create(
                number=spec["number"],
                defaults={
                    "title": spec["title"],
                    "project": projects[spec["project"]],
                    "requester": spec["requester"],
                    "approvers": ["wang.wu"],
                    "category": spec["category"],
                    "amount": D(spec["amount"]),
                    "created_at": now - dt.timedelta(days=spec["age_days"], hours=5),
                    **_decision(spec, "wang.wu", now),
                },
            )
            c.counts["expense_claims"] = c.counts.get("expense_claims", 0) + int(created)
            if created and claim.state == DocumentState.WAITING:
                new_waiting.append(claim)

        for number, customer, status, amount, currency, days in SALES_ORDERS:
            c.get_or_create(
                "sales_orders",
                SalesOrder,
                {
                    "customer": customers[customer],
                    "sales_rep": customers[customer].sales_rep,
                    "status": status,
                    "amount": D(amount),
                    "currency": currency,
                    "delivery_date": today + dt.timedelta(days=days),
                },
                number=number,
            )
        for invoice, customer, project, amount, paid, currency, days in RECEIVABLES:
            c.get_or_create(
                "receivables",
                Receivable,
                {
                    "customer": customers[customer],
                    "project": projects[project],
                    "amount": D(amount),
                    "paid_amount": D(paid),
                    "currency": currency,
                    "due_date": today + dt.timedelta(days=days),
                },
                invoice_number=invoice,
            )
        for number, supplier, buyer, lines in PURCHASE_ORDERS:
            order = c.get_or_create("purchase_orders", PurchaseOrder,
                                    {"supplier": suppliers[supplier], "buyer": buyer}, number=number)
            if not order.lines.exists():
                PurchaseOrderLine.objects.bulk_create(
                    PurchaseOrderLine(order=order, item=items[sku], warehouse=warehouses[wh], qty=D(qty),
                                      unit_price=items[sku].unit_price, promised_date=today + dt.timedelta(days=days))
                    for sku, wh, qty, days in lines
                )

    events = 0
    if emit:
        for document in sorted(new_waiting, key=lambda d: d.number):
            emitter.emit_approval_requested(document)
            events += 1
    c.counts["events"] = events
    return c.counts


def _decision(spec: dict[str, Any], approver: str, now: dt.datetime) -> dict[str, Any]:
    """State fields for a seeded document: waiting, or already decided some days ago."""
    if spec["state"] == DocumentState.WAITING:
        return {"state": DocumentState.WAITING}
    return {
        "state": spec["state"],
        "decided_by": approver,
        "decided_at": now - dt.timedelta(days=spec["decided_days_ago"]),
        "decision_comment": spec.get("comment", ""),
    }
