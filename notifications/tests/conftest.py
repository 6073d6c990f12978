"""The portal's shared fixtures, and the demo world with the five scenarios' rules."""

from __future__ import annotations

import pytest

from tests.conftest import committed, connector, demo, send_event, service_missing, users  # noqa: F401


@pytest.fixture
def scenarios(demo, connector, committed):  # noqa: F811
    from notifications.demo import setup_notifications_demo

    with committed():
        setup_notifications_demo(connector)
    return connector


# Scenario 2 against a real Synapse: the Matrix adapter's own session fixture, shared here.
from im.platforms.matrix.conftest import fresh_user, matrix, synapse  # noqa: E402,F401
