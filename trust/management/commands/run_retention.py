"""Destroy what the retention policies say is due, now (beat runs trust.tasks.run_retention)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from trust.retention import run


class Command(BaseCommand):
    help = "Run the retention policies now."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: object, **options: object) -> None:
        result = run(batch_size=options["batch_size"])
        for key, count in sorted(result.destroyed.items()):
            self.stdout.write(f"{key}: destroyed {count}")
        self.stdout.write(f"total destroyed: {result.total}")
