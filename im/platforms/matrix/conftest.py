"""A real Synapse for the Matrix adapter tests: started once per test session, stopped at its end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

# The portal's shared fixtures (eager tasks, the demo world, signed ERP events) live in tests/conftest.py.
from tests.conftest import (  # noqa: F401
    committed,
    connector,
    demo,
    send_event,
    service_missing,
    users,
)

from .testing import SynapseServer, synapse_available


@pytest.fixture(scope="session")
def synapse(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """A homeserver on a free loopback port, with a bot and two people registered."""
    if not synapse_available():
        service_missing("Synapse (pip install -e '.[test]')")
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    server.start()
    try:
        yield SimpleNamespace(
            server=server,
            url=server.url,
            bot=server.register("portal-bot"),
            alice=server.register("alice"),
            bob=server.register("bob"),
        )
    finally:
        server.stop()


@pytest.fixture
def matrix(synapse, settings) -> SimpleNamespace:
    """The portal configured to deliver to the test homeserver as its bot (and the dev inbox)."""
    from im.platforms.matrix import adapter

    settings.MATRIX_HOMESERVER_URL = synapse.url
    settings.MATRIX_BOT_TOKEN = synapse.bot.access_token
    settings.IM_ADAPTERS = ["devinbox", "matrix"]
    adapter._rooms.clear()  # each test finds its rooms as a fresh process would: through m.direct
    return synapse


@pytest.fixture
def fresh_user(synapse):
    """A newly registered Matrix user (no room with the bot yet)."""
    return lambda: synapse.server.register(f"u{uuid.uuid4().hex[:10]}")
