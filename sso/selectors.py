"""Who someone is in an ERP: the one place the portal looks up ERP identities (HackSoft's selectors:
reading only). Roles and logins are read as ``authorize()`` reads them: from the database, or for the
hot path's lookup by login from ``sso.snapshot``, kept only under the permission stamp that every saved
identity or user bumps, so a role revoked by the ERP sync stops counting at once."""

from __future__ import annotations

import copy
from typing import Any

from sso import snapshot
from sso.models import ErpIdentity


def erp_logins(user: Any) -> list[str]:
    """Every ERP login of ``user``, in any connector."""
    return list(ErpIdentity.objects.filter(user=user).values_list("erp_login", flat=True))


def user_for_login(connector: Any, login: str) -> Any:
    """The active portal user holding ``login`` in this ERP, or None."""
    return user_and_department_for_login(connector, login)[0]


def user_and_department_for_login(connector: Any, login: str) -> tuple[Any, str]:
    """``user_for_login`` and ``department_of`` in one query (a document's requester)."""
    identity = ErpIdentity.objects.filter(connector=connector, erp_login=login).select_related("user").first()
    if identity is None:
        return None, ""
    return (identity.user if identity.user.is_active else None), identity.department or ""


def users_for_logins(connector: Any, logins: list[str]) -> dict[str, Any]:
    """{ERP login: active portal user} for those of ``logins`` linked to one, in one query (a document's
    approvers, however many)."""
    identities = ErpIdentity.objects.filter(connector=connector, erp_login__in=logins).select_related("user")
    return {i.erp_login: i.user for i in identities if i.user.is_active}


def identities_for_logins(connector: Any, logins: list[str]) -> dict[str, tuple[Any, str]]:
    """{ERP login: (active portal user or None, ERP department)} for those of ``logins`` that have an
    identity: one query for those not kept by ``sso.snapshot`` (who is who, kept per process under the
    permission stamp). Each call gets its own copies of the users: nothing one caller caches on them
    reaches another."""

    def read(missing: list[str]) -> dict[str, tuple[Any, str] | None]:
        found: dict[str, tuple[Any, str] | None] = dict.fromkeys(missing)
        for i in ErpIdentity.objects.filter(connector=connector, erp_login__in=missing).select_related("user"):
            i.user._state.fields_cache.clear()  # kept bare: no related rows of this read ride along
            found[i.erp_login] = (i.user if i.user.is_active else None, i.department or "")
        return found

    return {login: (copy.copy(user) if user is not None else None, department)
            for login, value in snapshot.erp_identities(connector.pk, logins, read).items()
            if value is not None for user, department in [value]}


def users_for_login(connector: Any, login: str) -> list[Any]:
    """Every active portal user holding ``login`` in this ERP (none for an empty login)."""
    if not login:
        return []
    return [identity.user for identity in
            ErpIdentity.objects.filter(connector=connector, erp_login=login).select_related("user")
            if identity.user.is_active]


def role_holders(connector: Any, roles: list[str]) -> list[tuple[Any, str]]:
    """Active users holding any of ``roles`` in this ERP, each with the first of those roles they hold."""
    found = []
    for identity in ErpIdentity.objects.filter(connector=connector).select_related("user").order_by("pk"):
        held = [r for r in roles if r in (identity.roles or [])]
        if held and identity.user.is_active:
            found.append((identity.user, held[0]))
    return found


def department_of(connector: Any, login: str) -> str:
    """The ERP department of ``login`` ("" when unknown)."""
    return (ErpIdentity.objects.filter(connector=connector, erp_login=login)
            .values_list("department", flat=True).first() or "")


def identity_of(connector: Any, user: Any) -> ErpIdentity | None:
    """``user``'s identity in this ERP (the login they act under there), or None."""
    return ErpIdentity.objects.filter(connector=connector, user=user).first()
