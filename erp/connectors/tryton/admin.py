"""The admin "test connection" report for a configured connection."""

from __future__ import annotations

from django.utils.translation import gettext as _

from erp.connectors.base import ConnectorError
from erp.models import Connector


def connection_report(connector: Connector) -> tuple[bool, list[str]]:
    """(all good?, one line per check) for ``connector``."""
    from .connector import TrytonConnector

    settings = getattr(connector, "settings", None)
    if connector.kind != "tryton" or settings is None:
        return False, [_("no connection settings to test (kind %(kind)s)") % {"kind": connector.kind}]
    try:
        tryton = TrytonConnector(settings)
    except Exception as exc:  # undecryptable password, bad URL: say so instead of a 500
        return False, [_("cannot build the connection: %(error)s") % {"error": exc}]
    try:
        checks = tryton.test_connection()
    except ConnectorError as exc:
        return False, [str(exc)]
    finally:
        tryton.client.close()
    lines = [f"{'✓' if c.ok else '✗'} {c.name}" + (f" ({c.detail})" if c.detail else "") for c in checks]
    return all(c.ok for c in checks), lines
