"""A pool process keeps its database connection from task to task (portal/celery.py): Celery's Django
fix-up closed it before and after every task, so every task opened a new PostgreSQL session."""

from __future__ import annotations

import time

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from erp import tasks
from portal.celery import app as celery_app
from portal.celery import close_old_database_connections


class _Request:
    is_eager = False


class _Task:
    request = _Request()


class _EagerTask:
    class request:  # noqa: N801 - shaped like Celery's task.request
        is_eager = True


@pytest.mark.django_db(transaction=True)
def test_a_connection_outlives_a_task_until_it_is_too_old_or_broken(settings):
    fixup = DjangoWorkerFixup(celery_app)
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        connection.close()
        connection.ensure_connection()
        connection.close_at = None  # as a connection opened with CONN_MAX_AGE 60 would be, far from its end
        opened = connection.connection
        for _ in range(3):  # what runs around each task in a pool process
            fixup.on_task_prerun(sender=tasks.handle_events)
            close_old_database_connections(sender=_Task())
            fixup.on_task_postrun(sender=tasks.handle_events)
            close_old_database_connections(sender=_Task())
        assert connection.connection is opened

        close_old_database_connections(sender=_EagerTask())  # in-process: the caller's connection
        assert connection.connection is opened

        connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
        close_old_database_connections(sender=_Task())
        assert connection.connection is None  # the next query opens a new one
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = 0
        connection.close()
