"""Re-encrypt every encrypted value with the first key of FIELD_ENCRYPTION_KEYS and recompute the
lookup digests (after FIELD_DIGEST_KEY changed). All or nothing: one value no key opens changes nothing."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from trust.crypto import InvalidToken, rotations
from trust.fields import DigestField, encrypted_fields


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field (personal data, ERP credentials) with the first key."

    def handle(self, *args: object, **options: object) -> None:
        counts: dict[str, int] = {}
        try:
            with transaction.atomic():
                for model, names in encrypted_fields():
                    digests = [f for f in model._meta.concrete_fields if isinstance(f, DigestField)]
                    count = 0
                    # Not .iterator(): on PostgreSQL that is a server-side cursor, and a value that no
                    # key opens would raise while it is open, leaving the rollback to fail.
                    for row in model._default_manager.select_for_update().order_by("pk"):
                        # update(), not save(): no signals, no audit noise; the field encrypts anew.
                        values = {name: getattr(row, name) for name in names}
                        values.update({f.attname: f.compute(row) for f in digests})
                        model._default_manager.filter(pk=row.pk).update(**values)
                        count += 1
                    counts[model._meta.label] = count
                # Columns the apps manage themselves (ERP credentials), registered with trust.crypto.
                for label, rotate_all in rotations().items():
                    counts[label] = rotate_all()
        except InvalidToken as exc:
            raise CommandError("a value opens with none of FIELD_ENCRYPTION_KEYS; nothing was changed") from exc
        for label, count in counts.items():
            self.stdout.write(f"{label}: re-encrypted {count} row(s)")
