"""Personal data encrypted at rest, found by digest, re-encrypted by rotate_keys."""

from __future__ import annotations

import importlib

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from sso.models import ImIdentity, UnlinkedImUser
from trust.fields import digest


def raw(model, pk: int, *columns: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()


@pytest.fixture
def keys(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [first]
    return first, second


@pytest.fixture
def identity(db, keys, django_user_model) -> ImIdentity:
    user = django_user_model.objects.create_user("june", email="june@example.com")
    return ImIdentity.objects.create(
        user=user, platform="wecom", external_id="june", email="June@Example.com", mobile="+86 138-0000-0001"
    )


def test_raw_columns_hold_no_plaintext(identity):
    email, mobile, email_digest, mobile_digest = raw(ImIdentity, identity.pk, "email", "mobile", "email_digest",
                                                     "mobile_digest")
    assert "June" not in email and "example" not in email.lower() and email.startswith("gAAAAA")
    assert "138" not in mobile and "0001" not in mobile
    assert email_digest == digest("june@example.com") and mobile_digest == digest("13800000001")
    again = ImIdentity.objects.get(pk=identity.pk)
    assert (again.email, again.mobile) == ("June@Example.com", "+86 138-0000-0001")


def test_unlinked_users_are_encrypted_too(db, keys):
    row = UnlinkedImUser.objects.create(platform="feishu", external_id="x", email="kim@example.com",
                                        mobile="13900000000", reason="unknown")
    assert "kim" not in raw(UnlinkedImUser, row.pk, "email")[0]
    assert "139" not in raw(UnlinkedImUser, row.pk, "mobile")[0]


def test_im_sign_in_links_by_mobile_through_the_digest(identity, django_user_model):
    from sso.im_login.base import PlatformUser
    from sso.im_login.identity import resolve

    who = PlatformUser(platform="feishu", tenant="corp", external_id="ou_1", email="", mobile="13800000001",
                       name="June")
    assert resolve(who, expected_tenant="corp") == identity.user
    linked = ImIdentity.objects.get(platform="feishu", external_id="ou_1")
    assert linked.linked_by == "mobile" and linked.mobile_digest == digest("13800000001")


def test_refresh_keeps_the_digest_current(identity):
    from sso.im_login.base import PlatformUser
    from sso.im_login.identity import resolve

    who = PlatformUser(platform="wecom", tenant="", external_id="june", email="new@example.com", mobile="",
                       name="June")
    resolve(who)
    assert raw(ImIdentity, identity.pk, "email_digest")[0] == digest("new@example.com")


def test_rotate_keys_re_encrypts_everything_with_the_first_key(identity, keys, settings):
    from erp.models import Connector, ConnectorSettings

    first, second = keys
    erp = ConnectorSettings.objects.create(
        connector=Connector.objects.create(slug="t", name="T", kind="tryton"),
        base_url="https://erp.example.com", database="d", login="l",
    )
    erp.set_password("s3cret")
    erp.save()
    before = raw(ImIdentity, identity.pk, "email")[0]

    settings.FIELD_ENCRYPTION_KEYS = [second, first]
    call_command("rotate_keys")
    settings.FIELD_ENCRYPTION_KEYS = [second]  # the old key is gone: everything still opens
    after = ImIdentity.objects.get(pk=identity.pk)
    assert after.email == "June@Example.com" and raw(ImIdentity, identity.pk, "email")[0] != before
    assert ConnectorSettings.objects.get(pk=erp.pk).get_password() == "s3cret"


def test_rotate_keys_changes_nothing_when_a_value_does_not_open(identity, keys, settings):
    first, second = keys
    before = raw(ImIdentity, identity.pk, "email")[0]
    settings.FIELD_ENCRYPTION_KEYS = [second]  # the key that opens the rows is missing
    with pytest.raises(CommandError):
        call_command("rotate_keys")
    assert raw(ImIdentity, identity.pk, "email")[0] == before


def test_migration_encrypts_existing_plaintext_rows(identity):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ImIdentity._meta.db_table} SET email = %s, mobile = %s, email_digest = '' "  # noqa: S608
                       "WHERE id = %s", ["old@example.com", "13700000000", identity.pk])
    assert ImIdentity.objects.get(pk=identity.pk).email == "old@example.com"  # legacy plaintext still reads
    migration = importlib.import_module("sso.migrations.0006_encrypt_personal_data")
    migration.encrypt_existing(apps, None)
    email, mobile, email_digest = raw(ImIdentity, identity.pk, "email", "mobile", "email_digest")
    assert "old" not in email and "137" not in mobile and email_digest == digest("old@example.com")
    assert ImIdentity.objects.get(pk=identity.pk).mobile == "13700000000"
