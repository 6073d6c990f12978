from __future__ import annotations

from typing import Any

from sso.authz import Verdict, authorize, restrict


def erp_logins(user: Any) -> list[str]:
    from sso.models import ErpIdentity

    return list(ErpIdentity.objects.filter(user=user).values_list("erp_login", flat=True))


def may_subscribe_receivables(user: Any, ident: str) -> Verdict:
    """``receivables.project-<digest>`` / ``receivables.customer-<digest>``: whoever may view some
    receivable of that very project or customer (as the widget shows them); unknown and forbidden
    answer the same. The topic carries only a digest of the name, so the names the user may see are
    digested and compared."""
    from finance.models import Receivable
    from widgets.topics import scope_topic

    scope, _, digest = ident.partition("-")
    if scope not in ("project", "customer") or not digest or not authorize(user, "receivables.view"):
        return Verdict(False, "unknown topic")
    topic = f"receivables.{ident}"
    names = restrict(Receivable.objects.all(), user, "receivables.view").values_list(scope, flat=True).distinct()
    if any(scope_topic("receivables", scope, name) == topic for name in names if name):
        return Verdict(True, f"may view receivables of this {scope}")
    return Verdict(False, "unknown topic")
