"""Read side: the auditors' export of decisions and deliveries in a date range."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterator

from django.core.serializers.json import DjangoJSONEncoder

# Kinds of record the auditors' export holds, in registration order: (fields, rows(start, end)). Apps
# register their own in AppConfig.ready() (approvals: decisions, im: deliveries); trust imports none.
RowsFn = Callable[[dt.datetime, dt.datetime], Iterator[dict]]
_EXPORTS: dict[str, tuple[list[str], RowsFn]] = {}


def register_export(kind: str, fields: list[str], rows: RowsFn) -> None:
    """``rows(start, end)`` yields dicts with ``fields`` (``kind``, ``id``, ``at`` first): who, what, when;
    never card texts or comments."""
    _EXPORTS[kind] = (fields, rows)


def export_fields() -> list[str]:
    return list(dict.fromkeys(name for fields, _rows in _EXPORTS.values() for name in fields))


def export_rows(start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
    """Every registered kind's rows created in [start, end), kind after kind."""
    for _fields, rows in _EXPORTS.values():
        yield from rows(start, end)


def export_csv(start: dt.datetime, end: dt.datetime) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=export_fields(), extrasaction="ignore")
    writer.writeheader()
    for row in export_rows(start, end):
        writer.writerow({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()})
    return out.getvalue()


def export_json(start: dt.datetime, end: dt.datetime) -> str:
    return json.dumps(
        {"from": start, "to": end, "rows": list(export_rows(start, end))},
        cls=DjangoJSONEncoder, ensure_ascii=False, indent=1,
    )
