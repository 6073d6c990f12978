from __future__ import annotations

from typing import Any

from sso.authz import Verdict, authorize


def may_subscribe_receivables(user: Any, ident: str) -> Verdict:
    """``receivables.project-<digest>`` / ``receivables.customer-<digest>``: anyone who may view some
    receivables; what each one sees is restricted again at every render."""
    scope, _, digest = ident.partition("-")
    if scope not in ("project", "customer") or not digest:
        return Verdict(False, "unknown topic")
    return authorize(user, "receivables.view")
