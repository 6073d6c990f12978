"""Changing identities: the ERP user and role sync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from erp.connectors import get_connector
from erp.connectors.base import ErpUser
from sso.models import ErpIdentity

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    connector: str
    updated: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.connector}: {len(self.updated)} updated, {len(self.linked)} linked, "
            f"{len(self.created)} created, {len(self.deactivated)} lost their roles"
        )


def _portal_user_for(erp_user: ErpUser) -> tuple[Any, str]:
    """An existing portal user for this ERP account (same email, else same username), or a new one
    without a password: employees sign in with SSO or from their IM client."""
    User = get_user_model()
    if erp_user.email:
        matches = list(User.objects.filter(email__iexact=erp_user.email)[:2])
        if len(matches) == 1:
            return matches[0], "linked"
    existing = User.objects.filter(username=erp_user.login).first()
    if existing is not None:
        return existing, "linked"
    user = User(username=erp_user.login, email=erp_user.email, first_name=erp_user.name[:150])
    user.set_unusable_password()
    user.save()
    return user, "created"


_login_linked: list[Callable[[Any, Any, str], None]] = []


def register_login_linked(callback: Callable[[Any, Any, str], None]) -> None:
    """``callback(user, connector, erp_login)`` after a portal user is linked to an ERP login: apps hand
    over what waited for that login (approvals: its documents). This module imports no app."""
    _login_linked.append(callback)


def link_erp_login(
    user: Any, connector, erp_login: str, roles: list[str] | None = None, *, department: str = "", employee: str = ""
) -> ErpIdentity:
    """Link a portal user to an ERP login, and hand them what already waits for it."""
    identity, _ = ErpIdentity.objects.update_or_create(
        connector=connector,
        erp_login=erp_login,
        defaults={"user": user, "roles": roles or [], "department": department, "employee": employee},
    )
    for callback in _login_linked:
        callback(user, connector, erp_login)
    return identity


def sync_erp_identities(connector) -> SyncReport:
    """Bring the portal's ERP identities in line with the ERP's accounts and roles.

    Roles are replaced, not merged: a role revoked in the ERP stops granting anything at the next
    permission check. An account gone from the ERP, or disabled there, keeps its link but no roles.
    """
    report = SyncReport(connector=connector.slug)
    now = timezone.now()
    accounts = get_connector(connector.kind, connector).users()
    seen = set()
    for account in accounts:
        seen.add(account.login)
        roles = list(account.roles) if account.active else []
        with transaction.atomic():
            identity = (
                ErpIdentity.objects.select_for_update().filter(connector=connector, erp_login=account.login).first()
            )
            if identity is None:
                user, how = _portal_user_for(account)
                link_erp_login(user, connector, account.login, roles, department=account.department,
                               employee=account.employee or account.name)
                # synced_at changes no verdict: no permission stamp to bump (sso.snapshot).
                ErpIdentity.objects.filter(connector=connector, erp_login=account.login).update(synced_at=now)
                (report.created if how == "created" else report.linked).append(account.login)
                continue
            changed = (identity.roles, identity.department, identity.employee) != (
                roles, account.department, account.employee or account.name)
            identity.roles, identity.department = roles, account.department
            identity.employee = account.employee or account.name
            identity.synced_at = now
            identity.save()
            if changed:
                (report.updated if account.active else report.deactivated).append(account.login)
    for identity in ErpIdentity.objects.filter(connector=connector).exclude(erp_login__in=seen).exclude(roles=[]):
        identity.roles = []
        identity.synced_at = now
        identity.save()
        report.deactivated.append(identity.erp_login)
    log.info("erp identity sync %s", report)
    return report
