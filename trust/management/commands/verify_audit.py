"""Check the audit chain: exit 1 and list the problems when an entry was edited, deleted or reordered."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trust.services import verify


class Command(BaseCommand):
    help = "Verify the hash-chained audit trail (edited, deleted or reordered entries)."

    def handle(self, *args: object, **options: object) -> None:
        result = verify()
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(problem)
            raise CommandError(f"audit chain broken: {len(result.problems)} problem(s) in {result.checked} entries")
        self.stdout.write(f"audit chain ok: {result.checked} entries")
