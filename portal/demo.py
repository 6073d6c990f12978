"""The demo world: the demo ERP's data, portal users linked to its logins, and its waiting
documents announced through the signed intake (as an ERP would on first connection)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from approvals.models import ApprovalDocument
from approvals.services import link_erp_login
from erp.connectors.demo import emitter
from erp.connectors.demo.models import DemoUser, DocumentState, ExpenseClaim, PurchaseRequisition
from erp.connectors.demo.seed import seed_demo_erp
from erp.connectors.demo.services import ensure_connector
from sso.models import Profile

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
    with transaction.atomic():
        for erp_user in DemoUser.objects.order_by("login"):
            user, created = User.objects.get_or_create(
                username=erp_user.login,
                defaults={"first_name": erp_user.name, "email": erp_user.email},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            Profile.objects.get_or_create(user=user)
            link_erp_login(user, connector, erp_user.login, list(erp_user.roles))
            users.append((erp_user.login, erp_user.name, erp_user.title))
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", admin_password)
    mirrored = set(ApprovalDocument.objects.filter(connector=connector).values_list("external_id", flat=True))
    announced = 0
    for model in (PurchaseRequisition, ExpenseClaim):
        for doc in model.objects.filter(state=DocumentState.WAITING).order_by("number"):
            if doc.number not in mirrored:
                emitter.emit_approval_requested(doc)
                announced += 1
    return DemoSummary(users=users, announced=announced)
