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


def test_insert_rows_writes_what_bulk_create_writes_and_sets_the_ids(django_user_model, monkeypatch):
    """``insert_rows``: defaults, ``auto_now_add``, JSON, NULLs and quotes as ``bulk_create`` saves them, one
    statement on PostgreSQL, the ids set in order; a duplicate key raises as ``bulk_create`` does."""
    from django.db import DataError, IntegrityError, transaction

    from portal.bulk import insert_rows

    user = django_user_model.objects.create(username="inserted")

    def rows(prefix: str) -> list[Delivery]:
        return [Delivery(dedupe_key=f"{prefix}:{i}", topic="t", platform="devinbox", recipient=user if i else None,
                         card={"title": f"卡片 {i}"} if i % 2 else None,
                         last_error="it's \"quoted\"; DROP TABLE x" if i == 2 else "") for i in range(3)]

    ours, theirs = rows("insert"), rows("bulk")
    with CaptureQueriesContext(connection) as queries:
        insert_rows(Delivery, ours)
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1
    Delivery.objects.bulk_create(theirs)
    assert all(row.pk is not None and not row._state.adding for row in ours)
    assert [row.pk for row in ours] == sorted(row.pk for row in ours)  # in their order

    def saved(row: Delivery) -> tuple:
        stored = Delivery.objects.get(pk=row.pk)
        return (stored.dedupe_key.split(":")[1], stored.topic, stored.platform, stored.recipient_id, stored.card,
                stored.last_error, stored.status, stored.attempts, stored.kind, stored.created_at is not None)

    assert [saved(row) for row in ours] == [saved(row) for row in theirs]
    if connection.vendor == "postgresql":  # JSON null (as an expression asks for it) stays JSON null, not SQL NULL
        from django.db.models import JSONField, Value

        json_null = Delivery(dedupe_key="insert:null", topic="t", platform="devinbox",
                             card=Value(None, output_field=JSONField()))
        insert_rows(Delivery, [json_null])
        with connection.cursor() as cursor:
            cursor.execute("SELECT card IS NULL, card::text FROM im_delivery WHERE id = %s", [json_null.pk])
            assert cursor.fetchone() == (False, "null")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(Delivery, [Delivery(dedupe_key="insert:1", topic="t", platform="devinbox")])
    insert_rows(Delivery, [])  # nothing to insert: no statement
    if connection.vendor == "postgresql":  # the arrays are cast without a length: too long fails, never cut
        too_long = "t" * (Delivery._meta.get_field("topic").max_length + 1)
        with pytest.raises(DataError), transaction.atomic():
            insert_rows(Delivery, [Delivery(dedupe_key="insert:long", topic=too_long, platform="devinbox"),
                                   Delivery(dedupe_key="insert:short", topic="t", platform="devinbox")])


def test_insert_rows_together_writes_each_models_rows_in_one_statement_with_their_ids(django_user_model):
    from django.db import connection as conn

    from portal.bulk import insert_rows_together
    from sso.models import ImIdentity

    user = django_user_model.objects.create(username="together")
    deliveries = [Delivery(dedupe_key=f"together:{i}", topic=f"t{i}", platform="devinbox") for i in range(3)]
    identities = [ImIdentity(user=user, platform=platform, external_id=f"{platform}-id")
                  for platform in ("webhook", "devinbox")]
    with CaptureQueriesContext(conn) as queries:
        insert_rows_together([(Delivery, deliveries), (ImIdentity, identities), (Delivery, [])])
    if conn.vendor == "postgresql":
        assert len(queries.captured_queries) == 1
    assert [Delivery.objects.get(pk=row.pk).topic for row in deliveries] == ["t0", "t1", "t2"]
    assert [row.pk for row in deliveries] == sorted(row.pk for row in deliveries)
    assert [ImIdentity.objects.get(pk=row.pk).platform for row in identities] == ["webhook", "devinbox"]
    assert not any(row._state.adding for row in deliveries + identities)
    insert_rows_together([])  # nothing to insert: no statement
