"""Append the audit chain's head (seq and hash) to a file kept outside the database, and log it."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trust.services import anchor_now

logger = logging.getLogger("trust.anchor")


class Command(BaseCommand):
    help = "Record the audit chain's head outside the database (AUDIT_ANCHOR_FILE or --file)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", default="", help="append to this file (default: AUDIT_ANCHOR_FILE)")

    def handle(self, *args: object, **options: object) -> None:
        path = str(options["file"] or settings.AUDIT_ANCHOR_FILE)
        anchor = anchor_now()
        # The log line is a second copy where the database's writers usually cannot reach.
        logger.info("audit chain anchor", extra={"anchor": anchor})
        if not path:
            raise CommandError("set AUDIT_ANCHOR_FILE or pass --file")
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(anchor) + "\n")
        self.stdout.write(f"anchored #{anchor['seq']} {anchor['hash']} in {path}")
