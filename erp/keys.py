"""ERP credentials under the key ring of ``trust.crypto`` (registered for ``manage.py rotate_keys``)."""

from __future__ import annotations

from erp.models import ConnectorSettings
from trust.crypto import rotate


def rotate_credentials() -> int:
    """Re-encrypt every stored ERP password with the first key; raises InvalidToken if a key is missing."""
    count = 0
    for row in ConnectorSettings.objects.select_for_update().exclude(password_encrypted=""):
        ConnectorSettings.objects.filter(pk=row.pk).update(password_encrypted=rotate(row.password_encrypted))
        count += 1
    return count
