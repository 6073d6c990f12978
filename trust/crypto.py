"""Secrets at rest (personal data in trust's encrypted fields, ERP passwords): Fernet tokens under a key
ring from env ``FIELD_ENCRYPTION_KEYS``.

Comma-separated Fernet keys; the first encrypts, all of them decrypt, so a key is rotated by putting
a new one first, running ``manage.py rotate_connector_keys`` and then dropping the old one. Unset
(development): one key derived from SECRET_KEY, so a dev database still opens after a restart.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "key_ring", "register_rotation", "rotate", "rotations"]


def _dev_key() -> bytes:
    digest = hashlib.sha256(b"erp-field-encryption:" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def key_ring() -> MultiFernet:
    """The configured keys, first one first. Read on each call so tests and rotation see env changes."""
    keys = list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])
    try:
        fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys] or [Fernet(_dev_key())]
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must hold Fernet keys (Fernet.generate_key()), comma-separated"
        ) from exc
    return MultiFernet(fernets)


def encrypt(plaintext: str) -> str:
    return key_ring().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    """The plaintext; raises InvalidToken when no configured key opens it."""
    return key_ring().decrypt(token.encode()).decode() if token else ""


def rotate(token: str) -> str:
    """The same secret re-encrypted under the first key."""
    return key_ring().rotate(token.encode()).decode() if token else ""


# Columns of this key ring's tokens outside trust's encrypted fields (ERP credentials): each app registers
# how to re-encrypt its own in AppConfig.ready(), and ``manage.py rotate_keys`` runs them inside its
# all-or-nothing transaction. Each returns how many rows it re-encrypted; InvalidToken aborts.
_ROTATIONS: dict[str, Callable[[], int]] = {}


def register_rotation(label: str, rotate_all: Callable[[], int]) -> None:
    _ROTATIONS[label] = rotate_all


def rotations() -> dict[str, Callable[[], int]]:
    return dict(_ROTATIONS)
