# The project's shared fixtures (demo world, signed event sender, eager Celery) for trust's tests.
from tests.conftest import *  # noqa: F403
