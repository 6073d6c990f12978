"""Re-encrypt every stored ERP credential with the first key of FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from erp.models import ConnectorSettings
from trust.crypto import InvalidToken, rotate


class Command(BaseCommand):
    help = "Re-encrypt ERP connection credentials with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: object, **options: object) -> None:
        count = 0
        with transaction.atomic():
            for settings in ConnectorSettings.objects.select_for_update().exclude(password_encrypted=""):
                try:
                    settings.password_encrypted = rotate(settings.password_encrypted)
                except InvalidToken as exc:
                    raise CommandError(
                        f"no key in FIELD_ENCRYPTION_KEYS opens the credentials of {settings.connector.slug}; "
                        "nothing was changed"
                    ) from exc
                settings.save(update_fields=["password_encrypted"])
                count += 1
        self.stdout.write(f"re-encrypted {count} credential(s) with the first key")
