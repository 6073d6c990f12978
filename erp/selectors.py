"""Reads of erp shared by the intake's two routes."""

from __future__ import annotations

import time

from erp.models import Connector

# Seconds a process keeps a connector it read for the intake. A change saved in this process clears
# it at once (post_save / post_delete, erp/apps.py); other processes see it within this time.
CONNECTOR_CACHE_SECONDS = 5.0

_connectors: dict[str, tuple[float, Connector]] = {}


def cached_intake_connector(slug: str) -> Connector | None:
    """The enabled connector ``slug`` if this process read it recently; None: ask ``intake_connector``."""
    found = _connectors.get(slug)
    if found is None or found[0] < time.monotonic():
        return None
    return found[1]


def intake_connector(slug: str) -> Connector | None:
    """The enabled connector ``slug`` (one query, then kept for ``CONNECTOR_CACHE_SECONDS``), or None.
    Unknown slugs are not kept: the URL is anyone's to choose, and the cache must stay small."""
    connector = cached_intake_connector(slug)
    if connector is None:
        connector = Connector.objects.filter(slug=slug, enabled=True).first()
        if connector is not None:
            _connectors[slug] = (time.monotonic() + CONNECTOR_CACHE_SECONDS, connector)
    return connector


def forget_intake_connectors(**_: object) -> None:
    """A connector was saved or deleted: read them again (a new secret, a disabled connector)."""
    _connectors.clear()
