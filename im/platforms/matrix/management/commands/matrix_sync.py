"""``manage.py matrix_sync``: the bot's /sync loop, turning reply commands on cards into decisions."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from im.platforms.base import TransportError
from im.platforms.matrix.adapter import MatrixAdapter
from im.platforms.matrix.inbound import sync_once
from portal.retry import backoff_seconds


class Command(BaseCommand):
    help = "Long-poll the Matrix homeserver as the bot and act on replies to cards (run one per deployment)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one sync, then exit (for cron and tests)")
        parser.add_argument("--timeout-ms", type=int, default=30_000)

    def handle(self, *args: Any, once: bool = False, timeout_ms: int = 30_000, **options: Any) -> None:
        adapter = MatrixAdapter()
        failures = 0
        while True:
            try:
                for notice in sync_once(adapter, timeout_ms=0 if once else timeout_ms):
                    self.stdout.write(notice)
                failures = 0
            except TransportError as exc:
                if exc.permanent or once:
                    raise
                failures += 1
                delay = backoff_seconds(failures, exc.retry_after)
                self.stderr.write(f"sync failed, again in {delay:.0f}s: {exc}")
                time.sleep(delay)
            if once:
                return
