"""Encrypted model fields (Fernet tokens under trust.crypto's key ring, FIELD_ENCRYPTION_KEYS) and keyed
digests to find rows by an encrypted value.

An encrypted column cannot be searched (every token differs), so a field looked up by value gets a
``DigestField`` beside it: HMAC-SHA256 of the normalised value under ``FIELD_DIGEST_KEY``. Query
the digest (``digest(value)``), never the encrypted field.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.db import models
from django.utils.module_loading import import_string

from trust import crypto

TOKEN_PREFIX = "gAAAAA"  # noqa: S105  (every Fernet token starts so: version byte 0x80 + timestamp)


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every concrete model with encrypted fields, and their names (for rotate_keys)."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names and not model._meta.proxy:
            found.append((model, names))
    return found


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; reads give the plaintext back. Empty stays empty.

    A value read that is not a token (a row written before the field was encrypted) is returned as it
    is, and encrypted at its next save; a token no configured key opens raises ``InvalidToken``.
    Lookups by value cannot match (use a DigestField); only ``=""`` works.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if not value or not value.startswith(TOKEN_PREFIX):
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        # Python-side values are always plaintext (reads decrypt), so every write encrypts with the
        # first key: saving a row is also how it is re-encrypted (rotate_keys).
        value = super().get_prep_value(value)
        return crypto.encrypt(value) if value else value

    def formfield(self, **kwargs: Any) -> Any:
        # A one-line input, as the CharField/EmailField it replaces had.
        return super().formfield(**{"widget": forms.TextInput, **kwargs})


def _digest_key() -> bytes:
    key = getattr(settings, "FIELD_DIGEST_KEY", "") or ""
    if key:
        return key.encode()
    return hashlib.sha256(b"field-digest:" + settings.SECRET_KEY.encode()).digest()


def digest(value: str) -> str:
    """HMAC-SHA256 (hex) of an already normalised value; empty for an empty value."""
    if not value:
        return ""
    return hmac.new(_digest_key(), value.encode(), hashlib.sha256).hexdigest()


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


class DigestField(models.CharField):
    """Kept equal to ``digest(normalize(<source field>))`` on every save (put it in update_fields too)."""

    def __init__(self, *args: Any, source: str = "", normalize: str = "", **kwargs: Any) -> None:
        self.source = source
        self.normalize = normalize
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("db_index", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple:
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, normalize=self.normalize)
        for key, default in (("max_length", 64), ("blank", True), ("editable", False), ("db_index", True)):
            if kwargs.get(key) == default:
                kwargs.pop(key)
        return name, path, args, kwargs

    def normalizer(self) -> Callable[[str], str]:
        return import_string(self.normalize) if self.normalize else (lambda v: v)

    def compute(self, instance: models.Model) -> str:
        return digest(self.normalizer()(getattr(instance, self.source) or ""))

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = self.compute(model_instance)
        setattr(model_instance, self.attname, value)
        return value


