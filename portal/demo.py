"""The demo world: the demo ERP's data, portal users linked to its logins, and its waiting
documents announced through the signed intake (as an ERP would on first connection)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from approvals.models import ApprovalDocument
from erp.connectors.demo import emitter
from erp.connectors.demo.models import DemoUser, DocumentState, ExpenseClaim, PurchaseRequisition
from erp.connectors.demo.seed import seed_demo_erp
from erp.connectors.demo.services import ensure_connector
from sso.models import PermissionRule, Profile
from sso.services import link_erp_login

DEMO_PASSWORD = "demo"  # noqa: S105 - printed for the demo; production users sign in through SSO
ADMIN_USERNAME = "admin"


@dataclass(frozen=True)
class DemoSummary:
    users: list[tuple[str, str, str]]
    announced: int


def setup_demo(*, admin_password: str = "admin") -> DemoSummary:  # noqa: S107
    connector = ensure_connector()
    seed_demo_erp(emit=False)
    User = get_user_model()
    users = []
    demo_password_hash = None  # one PBKDF2 run (about 0.5 s) for all demo users, not one each
    with transaction.atomic():
        for erp_user in DemoUser.objects.order_by("login"):
            user, created = User.objects.get_or_create(
                username=erp_user.login,
                defaults={"first_name": erp_user.name, "email": erp_user.email},
            )
            if created:
                demo_password_hash = demo_password_hash or make_password(DEMO_PASSWORD)
                user.password = demo_password_hash
                user.save(update_fields=["password"])
            Profile.objects.get_or_create(user=user)
            link_erp_login(
                user, connector, erp_user.login, list(erp_user.roles),
                department=erp_user.department, employee=erp_user.name,
            )
            users.append((erp_user.login, erp_user.name, erp_user.title))
        ensure_demo_rules(connector)
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", admin_password)
    _mirror_erp_data(connector)
    mirrored = set(ApprovalDocument.objects.filter(connector=connector).values_list("external_id", flat=True))
    announced = 0
    for model in (PurchaseRequisition, ExpenseClaim):
        for doc in model.objects.filter(state=DocumentState.WAITING).order_by("number"):
            if doc.number not in mirrored:
                emitter.emit_approval_requested(doc)
                announced += 1
    return DemoSummary(users=users, announced=announced)


# The demo company's mapping of ERP roles to portal permissions; admins edit these in Django admin.
# Each role reads only the kinds of document its work needs: purchase managers requisitions and
# purchase orders, finance managers every spending document (they approve claims and payment requests
# and are the escalation target of waiting requisitions), buyers their own requests.
PURCHASING_KINDS = ["purchase_requisition", "purchase_order"]
SPENDING_KINDS = ["purchase_requisition", "purchase_order", "expense_claim", "payment_request"]
DEMO_RULES = [
    # name, ERP roles, actions, constraints
    ("采购员: 自己的申请 / Buyers: own requests", ["buyer"], ["approvals.view"], {"own_documents": True}),
    ("采购经理: 本部门 / Purchase managers: own department", ["purchase_manager"], ["approvals.view"],
     {"own_department": True, "document_kinds": PURCHASING_KINDS}),
    ("采购经理: 审批 ≤ 50,000 CNY / Purchase managers approve up to 50,000 CNY", ["purchase_manager"],
     ["approvals.view", "approvals.decide"],
     {"max_amount": Decimal("50000"), "currency": "CNY", "document_kinds": PURCHASING_KINDS}),
    ("财务经理: 审批 ≤ 200,000 CNY / Finance managers approve up to 200,000 CNY", ["finance_manager"],
     ["approvals.view", "approvals.decide"],
     {"max_amount": Decimal("200000"), "currency": "CNY", "document_kinds": SPENDING_KINDS}),
    ("库存查看 / Stock", ["warehouse_keeper", "buyer", "purchase_manager"], ["inventory.view"], {}),
    ("销售: 自己客户的订单与应收 / Sales: own customers' orders and receivables", ["sales"],
     ["orders.view", "receivables.view"], {"own_documents": True}),
    ("财务经理: 全部订单与应收 / Finance managers: all orders and receivables", ["finance_manager"],
     ["orders.view", "receivables.view"], {}),
    ("机器人与群聊 / Bot and group chats",
     ["buyer", "purchase_manager", "finance_manager", "warehouse_keeper", "sales"], ["bot.query", "groups.create"], {}),
]


def ensure_demo_rules(connector) -> None:
    for name, roles, actions, constraints in DEMO_RULES:
        PermissionRule.objects.get_or_create(
            name=name, defaults={"connector": connector, "erp_roles": roles, "actions": actions, **constraints}
        )


def _mirror_erp_data(connector) -> None:
    """On first connection the ERP sends its stock, orders and receivables once, through the intake,
    so that widgets and the bot have data before the first change happens."""
    from erp.connectors.demo.models import Receivable, SalesOrder, Stock
    from finance.models import Receivable as ReceivableMirror
    from inventory.models import SalesOrder as OrderMirror
    from inventory.models import StockLevel

    if not StockLevel.objects.filter(connector=connector).exists():
        for stock in Stock.objects.select_related("item", "warehouse").order_by("pk"):
            emitter.emit_stock_changed(stock)
    if not OrderMirror.objects.filter(connector=connector).exists():
        for order in SalesOrder.objects.select_related("customer").order_by("pk"):
            emitter.emit_order_status_changed(order, "")
    if not ReceivableMirror.objects.filter(connector=connector).exists():
        for receivable in Receivable.objects.select_related("customer", "project").order_by("pk"):
            emitter.emit_receivable_changed(receivable)
