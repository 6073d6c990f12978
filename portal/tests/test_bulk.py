"""``portal.bulk.update_rows``: one UPDATE for a batch of changed rows, the same result as ``bulk_update``."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from im.models import Delivery
from portal.bulk import update_rows

pytestmark = pytest.mark.django_db


def test_shared_and_per_row_values_are_written_in_one_statement(django_user_model):
    user = django_user_model.objects.create(username="bulk")
    rows = [Delivery.objects.create(dedupe_key=f"bulk:{i}", topic="t", platform="devinbox", recipient=user)
            for i in range(4)]
    untouched = Delivery.objects.create(dedupe_key="bulk:other", topic="t", platform="devinbox", recipient=user)
    now = timezone.now()
    for i, row in enumerate(rows):
        row.status = Delivery.Status.SENT  # shared
        row.lease_until = None  # shared, NULL
        row.attempts = i + 1  # per row
        row.card = {"title": f"卡片 {i}", "n": i} if i % 2 else None  # per row, JSON or NULL
        row.sent_at = now + dt.timedelta(seconds=i)  # per row
        row.last_error = "it's \"quoted\"; DROP TABLE x" if i == 3 else ""
    with CaptureQueriesContext(connection) as queries:
        update_rows(Delivery, rows, ["status", "lease_until", "attempts", "card", "sent_at", "last_error"])
    assert len(queries.captured_queries) == 1
    for i, row in enumerate(Delivery.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk")):
        assert (row.status, row.lease_until, row.attempts) == ("sent", None, i + 1)
        assert row.card == ({"title": f"卡片 {i}", "n": i} if i % 2 else None)
        assert row.sent_at == now + dt.timedelta(seconds=i)
        assert row.last_error == ("it's \"quoted\"; DROP TABLE x" if i == 3 else "")
    untouched.refresh_from_db()
    assert untouched.status == "queued" and untouched.attempts == 0
    update_rows(Delivery, [], ["status"])  # nothing to write: no statement
