"""The admin "test connection" report; kept here for existing imports (see erp.connectors.report)."""

from __future__ import annotations

from erp.connectors.report import connection_report

__all__ = ["connection_report"]
