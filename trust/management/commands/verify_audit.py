"""Check the audit chain: exit 1 and list the problems when an entry was edited, deleted or reordered,
or (with --anchors) when the chain no longer holds a head recorded outside the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trust.services import check_anchors, read_anchors, verify


class Command(BaseCommand):
    help = "Verify the hash-chained audit trail (edited, deleted or reordered entries; rewritten since an anchor)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--anchors", default="", help="a file written by anchor_audit")

    def handle(self, *args: object, **options: object) -> None:
        result = verify()
        problems = list(result.problems)
        if options["anchors"]:
            try:
                anchors = read_anchors(str(options["anchors"]))
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            problems += check_anchors(anchors)
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(f"audit chain broken: {len(problems)} problem(s) in {result.checked} entries")
        anchored = f", {len(anchors)} anchor(s) hold" if options["anchors"] else ""
        self.stdout.write(f"audit chain ok: {result.checked} entries{anchored}")
