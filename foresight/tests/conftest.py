"""The portal's shared fixtures, and a demo world with a small, fast ERP history."""

from __future__ import annotations

import pytest

from tests.conftest import committed, connector, demo, send_event, users  # noqa: F401


@pytest.fixture
def history(demo, connector, committed):  # noqa: F811
    """The demo world plus two years of history for a few dozen items, and the demo's foresight rule."""
    from erp.connectors.demo.history import seed_history
    from foresight.demo import REQUISITION_RULE
    from sso.models import PermissionRule

    with committed():
        counts = seed_history(items=16, customers=10, requesters=8)
        PermissionRule.objects.create(name=REQUISITION_RULE, connector=connector, erp_roles=["buyer"],
                                      actions=["foresight.requisition"])
    return counts
