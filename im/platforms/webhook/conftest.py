# The portal's shared fixtures (eager tasks, the demo world, signed ERP events) live in tests/conftest.py.
from tests.conftest import (  # noqa: F401
    committed,
    connector,
    demo,
    send_event,
    service_missing,
    users,
)
