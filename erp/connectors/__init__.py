"""ERP connectors, looked up by kind (and, for configured connections, by their Connector row)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from .base import ErpConnector

if TYPE_CHECKING:
    from erp.models import Connector

# kind -> dotted path of the connector class; each lives in its own module.
CONNECTOR_CLASSES: dict[str, str] = {
    "demo": "erp.connectors.demo.connector.DemoConnector",
    "tryton": "erp.connectors.tryton.connector.TrytonConnector",
    "odoo": "erp.connectors.odoo.connector.OdooConnector",
    "erpnext": "erp.connectors.erpnext.connector.ErpNextConnector",
    "generic": "erp.connectors.generic.connector.GenericConnector",
}
# Kinds whose connector needs a connection (URL, database, credentials) from ConnectorSettings.
CONFIGURED_KINDS = {"tryton", "odoo", "erpnext", "generic"}


def get_connector(slug: str, connector: Connector | None = None) -> ErpConnector:
    """The connector for ``slug`` (a Connector's kind). Configured kinds take their Connector row;
    without one, the single enabled Connector of that kind is used."""
    try:
        path = CONNECTOR_CLASSES[slug]
    except KeyError:
        raise LookupError(f"unknown ERP connector {slug!r}") from None
    cls = import_string(path)
    if slug not in CONFIGURED_KINDS:
        return cls()
    if connector is None:
        from erp.models import Connector

        rows = list(Connector.objects.filter(kind=slug, enabled=True).select_related("settings")[:2])
        if len(rows) != 1:
            raise LookupError(f"{len(rows)} enabled {slug!r} connectors: pass the Connector row")
        connector = rows[0]
    return cls(connector.settings)
