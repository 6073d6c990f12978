"""ERP connectors, looked up by slug."""

from __future__ import annotations

from django.utils.module_loading import import_string

from .base import ErpConnector

# slug -> dotted path of the connector class; each lives in its own module.
CONNECTOR_CLASSES: dict[str, str] = {
    "demo": "erp.connectors.demo.connector.DemoConnector",
}


def get_connector(slug: str) -> ErpConnector:
    try:
        path = CONNECTOR_CLASSES[slug]
    except KeyError:
        raise LookupError(f"unknown ERP connector {slug!r}") from None
    return import_string(path)()
