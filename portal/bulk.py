"""Writing a batch of changed rows in one statement, cheaply in CPU.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` arm per row and field and resolves (and
copies) each of them: for a worker's batch of 50 outbox rows or events that was most of the CPU of
recording it (issue #19, by cProfile). Here a value every row shares is set once, and on PostgreSQL the
per-row values come from one ``VALUES`` list joined on the id; elsewhere (SQLite) they fall back to the
CASE arms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Case, Model, Value, When


def update_rows(model: type[Model], rows: Sequence[Model], fields: list[str]) -> None:
    """Write ``fields`` of ``rows`` (instances of ``model`` with ids) in one UPDATE."""
    if not rows:
        return
    using = router.db_for_write(model)
    connection = connections[using]
    shared: dict[str, Any] = {}
    varying = []
    for name in fields:
        field = model._meta.get_field(name)
        values = [getattr(row, field.attname) for row in rows]
        if all(value == values[0] for value in values):
            shared[name] = values[0]
        else:
            varying.append((field, values))
    ids = [row.pk for row in rows]
    if not varying or connection.vendor != "postgresql":
        updates: dict[str, Any] = {name: Value(value, output_field=model._meta.get_field(name))
                                   for name, value in shared.items()}
        for field, values in varying:
            updates[field.name] = Case(*(When(pk=pk, then=Value(value, output_field=field))
                                         for pk, value in zip(ids, values, strict=True)), output_field=field)
        model._default_manager.using(using).filter(pk__in=ids).update(**updates)
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    assignments, params = [], []
    for name, value in shared.items():
        field = model._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    columns = [pk, *(field for field, _values in varying)]
    assignments += [f"{quote(field.column)} = v.{quote(field.column)}" for field, _values in varying]
    casts = ", ".join(f"%s::{field.cast_db_type(connection)}" for field in columns)
    values_sql = ", ".join(f"({casts})" for _row in rows)
    for i, row_pk in enumerate(ids):
        params.append(pk.get_db_prep_save(row_pk, connection))
        params += [field.get_db_prep_save(values[i], connection) for field, values in varying]
    names = ", ".join(quote(field.column) for field in columns)
    key = quote(pk.column)
    # Only quoted names from the model's own metadata are formatted in; every value is a parameter.
    sql = (f"UPDATE {table} SET {', '.join(assignments)} FROM (VALUES {values_sql}) AS v({names}) "  # noqa: S608
           f"WHERE {table}.{key} = v.{key}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
