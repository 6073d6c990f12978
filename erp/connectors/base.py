"""The one small interface every ERP connector implements.

A connector is a module under ``erp/connectors/<name>/`` with its tests and recorded fixtures beside
it. The portal only ever talks to an ERP through these methods.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

Outcome = Literal["approved", "rejected"]


class ConnectorError(Exception):
    """An ERP call failed. ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DecisionConflict(Exception):
    """The ERP already holds a different decision (made in the ERP itself, or elsewhere)."""

    def __init__(self, outcome: str, decided_by: str, decided_at: dt.datetime | None) -> None:
        super().__init__(f"already {outcome} by {decided_by}")
        self.outcome = outcome
        self.decided_by = decided_by
        self.decided_at = decided_at


@dataclass(frozen=True)
class DocumentLine:
    sku: str
    name: str
    qty: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class DocumentSnapshot:
    """An approval document as the ERP holds it now."""

    id: str
    kind: str
    title: str
    amount: Decimal
    currency: str
    requester: str
    project: str
    state: str  # "pending", "approved", "rejected" or "cancelled"
    approvers: list[str] = field(default_factory=list)
    lines: list[DocumentLine] = field(default_factory=list)
    decided_by: str = ""
    decided_at: dt.datetime | None = None


@dataclass(frozen=True)
class WritebackResult:
    """What the ERP recorded. ``replayed`` is true when the idempotency key had been seen before."""

    outcome: Outcome
    decided_by: str
    decided_at: dt.datetime
    erp_reference: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class ErpUser:
    """An ERP account as the identity sync sees it (``sso.services.sync_erp_identities``)."""

    login: str
    name: str = ""
    email: str = ""
    roles: tuple[str, ...] = ()
    employee: str = ""
    department: str = ""
    active: bool = True


class ErpConnector(Protocol):
    slug: str

    def read_document(self, external_id: str) -> DocumentSnapshot | None:
        """The document as the ERP holds it, or None when the ERP does not know it."""

    def decide(
        self,
        external_id: str,
        outcome: Outcome,
        *,
        actor: str,
        comment: str,
        idempotency_key: str,
    ) -> WritebackResult:
        """Record a decision in the ERP, at most once per idempotency key.

        Calling again with the same key returns the first result (``replayed=True``) and changes
        nothing. Raises DecisionConflict when the ERP holds a different decision, ConnectorError
        otherwise.
        """

    def users(self) -> list[ErpUser]:
        """Every ERP account with its roles, for the identity and role sync."""
