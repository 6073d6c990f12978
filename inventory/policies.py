"""Who may subscribe to live stock and order topics. Refused and missing answer the same."""

from __future__ import annotations

from typing import Any

from sso.authz import Verdict


def may_subscribe_item(user: Any, sku: str) -> Verdict:
    from inventory import selectors

    if selectors.stock_of_item(user, sku).exists():
        return Verdict(True, "may view this item's stock")
    return Verdict(False, "unknown item")


def may_subscribe_order(user: Any, ident: str) -> Verdict:
    from inventory import selectors

    if ident.isdigit() and selectors.orders_for(user).filter(pk=int(ident)).exists():
        return Verdict(True, "may view this order")
    return Verdict(False, "unknown order")
