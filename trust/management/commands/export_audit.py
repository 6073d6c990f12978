"""Decisions and deliveries in a date range for auditors, as CSV or JSON."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from trust.selectors import export_csv, export_json


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = "Export decisions and deliveries created from --from to --to (inclusive days) as CSV or JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--from", dest="start", required=True, type=_day)
        parser.add_argument("--to", dest="end", required=True, type=_day)
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--output", "-o", default="-", help="file (default: standard output)")

    def handle(self, *args: object, **options: object) -> None:
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(options["start"], dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(options["end"] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        body = (export_csv if options["format"] == "csv" else export_json)(start, end)
        if options["output"] == "-":
            self.stdout.write(body, ending="")
        else:
            with open(options["output"], "w", encoding="utf-8") as fh:
                fh.write(body)
