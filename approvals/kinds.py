"""The document kinds the connectors produce, and what each allows.

The demo ERP sends ``purchase_requisition`` and ``expense_claim``, Tryton ``purchase_requisition``,
Odoo ``purchase_order``, ERPNext ``purchase_order`` and ``expense_claim``; ``payment_request`` is the
generic connectors' name for a request to pay a supplier. A kind not listed here is still mirrored
(a connector may add its own) and treated as one that cannot be negative.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class DocumentKind:
    code: str
    label: str | Promise
    # Credit notes and refunds carry negative amounts; a requisition or a claim never does, so a
    # negative one is a mistake or an attack on "amount at most …" rules, and the intake refuses it.
    allows_credit: bool = False


KINDS: dict[str, DocumentKind] = {
    kind.code: kind
    for kind in (
        DocumentKind("purchase_requisition", _("purchase requisition")),
        DocumentKind("purchase_order", _("purchase order")),
        DocumentKind("expense_claim", _("expense claim")),
        DocumentKind("payment_request", _("payment request")),
        DocumentKind("credit_note", _("credit note"), allows_credit=True),
    )
}


def allows_credit(kind: str) -> bool:
    found = KINDS.get(kind)
    return found is not None and found.allows_credit
