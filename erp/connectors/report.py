"""The admin "test connection" report, for every configured kind: what works, what the account may do."""

from __future__ import annotations

from django.utils.translation import gettext as _

from erp.connectors.base import TEST_CONNECTION, ConnectorError, supports
from erp.models import Connector


def connection_report(connector: Connector) -> tuple[bool, list[str]]:
    """(all good?, one line per check) for ``connector``."""
    from erp.connectors import CONFIGURED_KINDS, get_connector

    settings = getattr(connector, "settings", None)
    if connector.kind not in CONFIGURED_KINDS or settings is None:
        return False, [_("no connection settings to test (kind %(kind)s)") % {"kind": connector.kind}]
    try:
        erp = get_connector(connector.kind, connector)
    except Exception as exc:  # undecryptable password, bad URL, bad options: say so instead of a 500
        return False, [_("cannot build the connection: %(error)s") % {"error": exc}]
    if not supports(erp, TEST_CONNECTION):
        return False, [_("this kind of connector cannot test its connection")]
    try:
        checks = erp.test_connection()  # type: ignore[attr-defined]
    except ConnectorError as exc:
        return False, [str(exc)]
    finally:
        close = getattr(erp, "close", None) or getattr(getattr(erp, "client", None), "close", None)
        if close is not None:
            close()
    lines = [f"{'✓' if c.ok else '✗'} {c.name}" + (f" ({c.detail})" if c.detail else "") for c in checks]
    return all(c.ok for c in checks), lines
