"""Fixtures every test of every app gets (app fixtures live in tests/conftest.py and each app's own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portal.celery import app as celery_app


@pytest.fixture(autouse=True)
def _eager_tasks(settings) -> Iterator[None]:
    """Tasks run in-process unless a test starts a real worker (tests/test_worker.py), also when CI sets
    REDIS_URL: with a broker configured, the intake would only store events for workers that no unit test
    starts."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_permission_reads() -> Iterator[None]:
    """Each test starts as a new process would: a test's rows are rolled back without a signal, so what
    this process kept of them (``sso.snapshot``) must not reach the next test, whose rows may reuse the ids."""
    from sso import snapshot

    snapshot.forget()
    yield
    snapshot.forget()
