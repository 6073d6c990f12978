"""Writing (and claiming) a batch of rows in one statement, cheaply in CPU.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` arm per row and field and resolves (and
copies) each of them: for a worker's batch of 50 outbox rows or events that was most of the CPU of
recording it (issue #19, by cProfile). Here a value every row shares is set once, and on PostgreSQL the
per-row values come from one JSON parameter read into the table's row type (``_json_source``; a
``VALUES`` list where a value has no JSON form) joined on the id; elsewhere (SQLite) they fall back to the
CASE arms. The PostgreSQL statements are built from the model's own metadata (quoted names) with every
value a parameter, and cost a fraction of an ORM query's CPU; ``update_sql``/``values_sql`` let a caller
combine them with other statements in one ``WITH`` (im.services records a batch so).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Case, Model, Value, When
from psycopg.types.json import Json, Jsonb


def update_rows(model: type[Model], rows: Sequence[Model], fields: list[str], *,
                where: dict[str, Any] | None = None, also: dict[str, Any] | None = None) -> list[Any]:
    """Write ``fields`` of ``rows`` (instances of ``model`` with ids) in one UPDATE, and ``also``'s values
    (field name → one value for every row). With ``where`` (field name → value) only the rows that still
    hold those values are written. Returns the ids written (PostgreSQL: ``RETURNING``, one statement;
    elsewhere a read of the ids matching ``where`` comes first)."""
    if not rows:
        return []
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor == "postgresql":
        sql, params = update_sql(model, rows, fields, connection, where=where, also=also)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]
    manager = model._default_manager.using(using)
    ids = [row.pk for row in rows]
    if where:
        ids = list(manager.filter(pk__in=ids, **where).values_list("pk", flat=True))
        if not ids:
            return []
        wanted = set(ids)
        rows = [row for row in rows if row.pk in wanted]
    shared, varying = _split(model, rows, fields)
    shared.update(also or {})
    updates: dict[str, Any] = {name: Value(value, output_field=model._meta.get_field(name))
                               for name, value in shared.items()}
    for field, values in varying:
        updates[field.name] = Case(*(When(pk=pk, then=Value(value, output_field=field))
                                     for pk, value in zip(ids, values, strict=True)), output_field=field)
    manager.filter(pk__in=ids, **(where or {})).update(**updates)
    return ids


# PostgreSQL takes at most 65,535 parameters per statement.
_MAX_PARAMS = 65_000


def insert_rows(model: type[Model], rows: Sequence[Model]) -> None:
    """INSERT new ``rows`` (instances of ``model`` without ids) and set their ids, as ``bulk_create`` does
    (no signals; defaults and ``auto_now`` through each field's ``pre_save``); on PostgreSQL in one
    statement built from the model's metadata, at a fraction of the ORM's CPU: a worker's batch of one
    event inserts into four tables. A unique violation raises ``IntegrityError`` as ``bulk_create`` does."""
    if not rows:
        return
    using = router.db_for_write(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        model._default_manager.using(using).bulk_create(rows)
        return
    fields, head, row_part, returning, pk_attname = _insert_statement(model, using)
    with connection.cursor() as cursor:
        source = _json_source(model, fields, rows, connection, pre_save=True)
        if source is not None:
            cursor.execute(head + source[0] + returning, source[1])
            _set_ids(model, rows, cursor.fetchall(), pk_attname, using)
            return
        size = max(1, _MAX_PARAMS // max(len(fields), 1))
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            params = [field.get_db_prep_save(field.pre_save(row, True), connection) for row in chunk
                      for field in fields]
            cursor.execute(head + "VALUES " + ", ".join([row_part] * len(chunk)) + returning, params)
            _set_ids(model, chunk, cursor.fetchall(), pk_attname, using)


def insert_rows_together(groups: Sequence[tuple[type[Model], Sequence[Model]]]) -> None:
    """``insert_rows`` for rows of several models that do not refer to each other, as ONE statement on
    PostgreSQL (a data-modifying ``WITH`` per model): a worker's batch writes a document's lines,
    approvers and history so, where each statement cost the database about 0.35 ms whatever its size
    (parsing and planning; issue #19). Elsewhere, or when a value has no JSON form or a model's key is
    not one the database numbers, one ``insert_rows`` per model."""
    groups = [(model, rows) for model, rows in groups if rows]
    if not groups:
        return
    using = router.db_for_write(groups[0][0])
    connection = connections[using]
    parts, params = [], []
    if connection.vendor == "postgresql" and all(router.db_for_write(model) == using for model, _rows in groups):
        for index, (model, rows) in enumerate(groups):
            fields, head, _row_part, returning, _pk = _insert_statement(model, using)
            source = _json_source(model, fields, rows, connection, pre_save=True)
            if source is None or model._meta.pk.get_internal_type() not in _NUMBERED:
                parts = []
                break
            parts.append((f"g{index}", head + source[0] + returning))
            params += source[1]
    if not parts:
        for model, rows in groups:
            insert_rows(model, rows)
        return
    quote = connection.ops.quote_name
    selects = " UNION ALL ".join(
        f"SELECT {index}, {quote(model._meta.pk.column)} FROM {name}"  # noqa: S608 - our CTE names and the model's
        for index, ((name, _sql), (model, _rows)) in enumerate(zip(parts, groups, strict=True)))
    sql = "WITH " + ", ".join(f"{name} AS ({insert})" for name, insert in parts) + " " + selects
    ids: list[list[Any]] = [[] for _group in groups]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for index, pk in cursor.fetchall():
            ids[index].append(pk)
    for (model, rows), found in zip(groups, ids, strict=True):
        # One INSERT numbers its rows in the order its SELECT gives them (the JSON array's): ascending ids,
        # whatever order the rows come back in.
        _set_ids(model, rows, [(pk,) for pk in sorted(found)], model._meta.pk.attname, using)


_NUMBERED = ("AutoField", "BigAutoField", "SmallAutoField")


def _set_ids(model: type[Model], rows: Sequence[Model], found: Sequence[Sequence[Any]], pk_attname: str,
             using: str) -> None:
    # PostgreSQL returns the rows of a multi-row VALUES or of json_populate_recordset() in their order
    # (bulk_create relies on it for VALUES and for unnest()).
    for row, (pk,) in zip(rows, found, strict=True):
        setattr(row, pk_attname, pk)
        row._state.adding = False
        row._state.db = using


class _NotJson(Exception):
    """A value that has no faithful JSON form here (bytes, a duration, NaN…): the caller uses VALUES."""


_AS_IS = (str, int, type(None))  # bool is an int


def _json_ready(value: Any) -> Any:
    """A prepared database value (``get_db_prep_save``'s) as PostgreSQL's JSON input of its column reads it."""
    if isinstance(value, _AS_IS):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise _NotJson
    if isinstance(value, Json | Jsonb):  # a JSONField's value, dumped with the field's own encoder
        if value.obj is None:  # JSON null: the JSON input would make it SQL NULL, bulk_create stores 'null'
            raise _NotJson
        return value.obj if value.dumps in (None, json.dumps) else json.loads(value.dumps(value.obj))
    if isinstance(value, datetime.date | datetime.time):  # datetimes too; ISO 8601 keeps the offset
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            raise _NotJson
        return str(value)
    raise _NotJson


def _json_source(model: type[Model], fields: Sequence[Any], rows: Sequence[Any], connection: Any, *,
                 pre_save: bool) -> tuple[str, list[str]] | None:
    """``SELECT <columns> FROM json_populate_recordset(NULL::<table>, %s)``: the rows as ONE JSON
    parameter read into the table's own row type (its columns' types, lengths included), or None when a
    value has no JSON form. Why JSON: the statement stays short and the same whatever the batch's size,
    so psycopg parses it once (a VALUES list of 50 rows was parsed on every execute), and one C-encoded
    string costs a fraction of dumping a parameter per value or an array per column (issue #19).
    ``rows`` are instances (``pre_save``: their fields' ``pre_save`` is applied, as an INSERT does) or
    sequences of raw values in ``fields``' order."""
    columns = [field.column for field in fields]
    try:
        if pre_save:
            data = [{column: _json_ready(field.get_db_prep_save(field.pre_save(row, True), connection))
                     for column, field in zip(columns, fields, strict=True)} for row in rows]
        else:
            data = [{column: _json_ready(field.get_db_prep_save(value, connection))
                     for column, field, value in zip(columns, fields, row, strict=True)} for row in rows]
    except _NotJson:
        return None
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    # Only quoted names from the model's own metadata are formatted in; the rows are the one parameter.
    sql = f"SELECT {names} FROM json_populate_recordset(NULL::{quote(model._meta.db_table)}, %s::json)"  # noqa: S608
    return sql, [json.dumps(data, ensure_ascii=False, separators=(",", ":"))]


@functools.lru_cache(maxsize=64)
def _insert_statement(model: type[Model], alias: str) -> tuple[list, str, str, str, str]:
    connection = connections[alias]
    quote = connection.ops.quote_name
    opts = model._meta
    fields = [field for field in opts.concrete_fields
              if not getattr(field, "generated", False) and not (field is opts.pk and field.db_returning)]
    columns = ", ".join(quote(field.column) for field in fields)
    # Only quoted names from the model's own metadata are formatted in; every value is a parameter.
    head = f"INSERT INTO {quote(opts.db_table)} ({columns}) "  # noqa: S608
    row_part = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return fields, head, row_part, f" RETURNING {quote(opts.pk.column)}", opts.pk.attname


def _split(model: type[Model], rows: Sequence[Model], fields: list[str]) -> tuple[dict[str, Any], list]:
    """The fields every row holds the same value of (name → value), and the rest (field, values)."""
    shared: dict[str, Any] = {}
    varying = []
    for name in fields:
        field = model._meta.get_field(name)
        values = [getattr(row, field.attname) for row in rows]
        if all(value == values[0] for value in values):
            shared[name] = values[0]
        else:
            varying.append((field, values))
    return shared, varying


def update_sql(model: type[Model], rows: Sequence[Model], fields: list[str], connection: Any, *,
               where: dict[str, Any] | None = None, also: dict[str, Any] | None = None) -> tuple[str, list]:
    """PostgreSQL: ``update_rows``' statement, ``UPDATE … RETURNING <pk>``, and its parameters."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    shared, varying = _split(model, rows, fields)
    shared.update(also or {})
    assignments, params = [], []
    for name, value in shared.items():
        field = model._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    assignments += [f"{quote(field.column)} = v.{quote(field.column)}" for field, _values in varying]
    columns = [pk, *(field for field, _values in varying)]
    values = [[row.pk for row in rows], *(values for _field, values in varying)]
    values_part, values_params = _values(columns, list(zip(*values, strict=True)), connection)
    params += values_params
    key = quote(pk.column)
    conditions = [f"{table}.{key} = v.{key}"]
    for name, value in (where or {}).items():
        field = model._meta.get_field(name)
        if value is None:
            conditions.append(f"{table}.{quote(field.column)} IS NULL")
        else:
            conditions.append(f"{table}.{quote(field.column)} = %s")
            params.append(field.get_db_prep_value(value, connection))
    names = ", ".join(quote(field.column) for field in columns)
    # Only quoted names from the model's own metadata are formatted in; every value is a parameter.
    sql = (f"UPDATE {table} SET {', '.join(assignments)} FROM ({values_part}) AS v({names}) "  # noqa: S608
           f"WHERE {' AND '.join(conditions)} RETURNING {table}.{key}")
    return sql, params


def values_sql(model: type[Model], rows: Sequence[Model], fields: list[str], connection: Any) -> tuple[str, list]:
    """PostgreSQL: a typed row source (``_json_source``'s ``SELECT``, or ``VALUES (…), (…)``) of new
    ``rows``' ``fields`` as an INSERT would save them (defaults, ``auto_now``: each field's ``pre_save``),
    for ``INSERT INTO … (fields) <source>`` or ``SELECT … FROM (<source>) AS v(fields)``."""
    columns = [model._meta.get_field(name) for name in fields]
    return _values(columns, [[field.pre_save(row, True) for field in columns] for row in rows], connection)


def _values(columns: list, rows: Sequence[Sequence[Any]], connection: Any) -> tuple[str, list]:
    """The rows as a typed row source: ``_json_source``'s when it can (every column of one model, every
    value with a JSON form), else ``VALUES (…), (…)`` with a cast on each placeholder."""
    model = columns[0].model
    if all(field.model is model for field in columns):
        source = _json_source(model, columns, rows, connection, pre_save=False)
        if source is not None:
            return source
    casts = ", ".join(f"%s::{field.cast_db_type(connection)}" for field in columns)
    params = [field.get_db_prep_save(value, connection) for row in rows
              for field, value in zip(columns, row, strict=True)]
    return "VALUES " + ", ".join(f"({casts})" for _row in rows), params


def columns_of(model: type[Model], connection: Any, alias: str) -> str:
    """``alias."col", …`` for every concrete field of ``model``, in ``from_row``'s order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def row_reader(model: type[Model], connection: Any) -> Callable[[Sequence[Any]], Model | None]:
    """Makes instances of ``model`` from raw rows of ``columns_of``' columns (the same field converters as
    a queryset, e.g. JSON); an all-NULL primary key (an outer join that found nothing) gives None. Kept
    per (model, database): working out the converters is most of the cost of a batch of one."""
    return _reader(model, connection.alias)


@functools.lru_cache(maxsize=64)
def _reader(model: type[Model], alias: str) -> Callable[[Sequence[Any]], Model | None]:
    connection = connections[alias]
    fields = model._meta.concrete_fields
    names = [field.attname for field in fields]
    cols = [field.get_col(model._meta.db_table) for field in fields]
    converters = [(i, [*connection.ops.get_db_converters(col), *col.field.get_db_converters(connection)])
                  for i, col in enumerate(cols)]
    converters = [(i, found) for i, found in converters if found]
    pk_index = names.index(model._meta.pk.attname)

    def read(values: Sequence[Any]) -> Model | None:
        if values[pk_index] is None:
            return None
        values = list(values)
        for i, found in converters:
            for convert in found:
                values[i] = convert(values[i], cols[i], connections[alias])
        return model.from_db(alias, names, values)

    return read
