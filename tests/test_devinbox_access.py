"""The dev inbox is not a side door: a phone acts only for a person who proved who they are, and the
simulator refuses to serve on anything but loopback unless forced."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.models import ApprovalDocument, Decision
from im.platforms.devinbox.guard import is_loopback, refusal_from_env, remote_bind_refusal
from im.platforms.devinbox.models import DevInboxMessage
from tests.conftest import unlock_phone

DOC = "PR-2026-0042"
ANY = "0.0.0.0"  # noqa: S104 - the address being refused


@pytest.fixture
def document(demo) -> ApprovalDocument:
    return ApprovalDocument.objects.get(external_id=DOC)


@pytest.fixture
def card(users, document) -> DevInboxMessage:
    return DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=document.topic)


@pytest.mark.django_db
def test_an_anonymous_browser_sees_no_ones_phone_and_acts_for_no_one(client, users, card, committed):
    wang, li = users["wang.wu"], users["li.si"]
    page = client.get("/dev/inbox/?user=li.si").content.decode()
    assert "伺服电机" not in page and 'name="password"' in page  # locked: asks for the password
    assert "伺服电机" not in client.get(f"/dev/inbox/phone/{li.pk}/").content.decode()
    with committed():
        assert client.post(f"/dev/inbox/message/{card.pk}/action/approve/").status_code == 404
        assert client.post(f"/dev/inbox/phone/{wang.pk}/ask/", {"text": "我的待审批"}).status_code == 404
    assert not Decision.objects.exists()
    assert not DevInboxMessage.objects.filter(recipient=wang, card__topic__startswith="bot.").exists()


@pytest.mark.django_db
def test_a_phone_opens_with_its_owners_password_once_per_browser(client, users, card, committed):
    li = users["li.si"]
    wrong = client.post(f"/dev/inbox/phone/{li.pk}/unlock/", {"password": "guess"}, HTTP_HX_REQUEST="true")
    assert "伺服电机" not in wrong.content.decode() and 'class="error"' in wrong.content.decode()
    assert "HX-Refresh" not in wrong
    # Unlocked from the page (htmx): the page reloads, so its live socket reconnects with the proof and
    # may watch the phone's topic (a socket reads the phones its session proved when it connects).
    right = client.post(f"/dev/inbox/phone/{li.pk}/unlock/", {"password": "demo"}, HTTP_HX_REQUEST="true")
    assert right.status_code == 200 and right["HX-Refresh"] == "true"
    unlock_phone(client, li)
    assert "伺服电机" in client.get("/dev/inbox/?user=li.si").content.decode()
    # Only that phone: another person's stays locked in the same browser.
    assert "伺服电机" not in client.get(f"/dev/inbox/phone/{users['wang.wu'].pk}/").content.decode()
    with committed():
        assert client.post(f"/dev/inbox/message/{card.pk}/action/approve/").status_code == 200
    assert Decision.objects.get().actor == li
    # Another browser has proved nothing.
    assert Client().post(f"/dev/inbox/message/{card.pk}/action/reject/").status_code == 404


@pytest.mark.django_db
def test_the_administrators_phone_is_not_reachable_by_id(client, users):
    admin = users["admin"]
    assert client.get(f"/dev/inbox/phone/{admin.pk}/").status_code == 404
    assert client.post(f"/dev/inbox/phone/{admin.pk}/unlock/", {"password": "admin"}).status_code == 404
    assert client.post(f"/dev/inbox/phone/{admin.pk}/ask/", {"text": "我的待审批"}).status_code == 404
    staff = Client()
    staff.force_login(admin)  # the administrator signed in for real sees their own phone
    assert staff.get(f"/dev/inbox/phone/{admin.pk}/").status_code == 200


@pytest.mark.django_db
def test_staff_may_use_peoples_phones(users, card, committed):
    staff = Client()
    staff.force_login(users["admin"])
    assert "伺服电机" in staff.get(f"/dev/inbox/phone/{users['li.si'].pk}/").content.decode()


@pytest.mark.django_db
def test_a_card_link_from_a_signed_in_phone_decides_without_a_second_password(client, users, card, document):
    link = card.card["link"]
    token_path = "/s/" + link.split("/s/", 1)[1]
    unlock_phone(client, users["li.si"])
    assert client.get(token_path)["Location"] == document.get_absolute_url()
    page = client.get(document.get_absolute_url()).content.decode()
    assert 'name="link_password"' not in page and 'name="outcome"' in page
    client.post(f"{document.get_absolute_url()}decide/", {"outcome": "approved", "idempotency_key": "k1"})
    assert Decision.objects.get().actor == users["li.si"]


@pytest.mark.django_db
def test_the_same_card_link_forwarded_to_a_browser_without_the_phone_needs_the_password(users, card, document):
    link = card.card["link"]
    browser = Client()
    assert browser.get("/s/" + link.split("/s/", 1)[1])["Location"] == document.get_absolute_url()
    assert 'name="link_password"' in browser.get(document.get_absolute_url()).content.decode()
    browser.post(f"{document.get_absolute_url()}decide/", {"outcome": "approved", "idempotency_key": "k1"})
    assert not Decision.objects.exists()


def test_loopback_only_unless_forced():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback(ANY) and not is_loopback("192.168.1.5") and not is_loopback("example.com")
    assert remote_bind_refusal(ANY, enabled=True, allow_remote=False)
    assert remote_bind_refusal(ANY, enabled=True, allow_remote=True) is None
    assert remote_bind_refusal(ANY, enabled=False, allow_remote=False) is None
    assert refusal_from_env(ANY, {"DEV_INBOX_ENABLED": "1"})
    assert refusal_from_env(ANY, {"DEV_INBOX_ENABLED": "1", "DEV_INBOX_ALLOW_REMOTE": "1"}) is None


@pytest.mark.django_db
def test_the_demo_refuses_to_serve_the_dev_inbox_beyond_loopback(settings):
    settings.DEV_INBOX_ENABLED = True
    settings.DEV_INBOX_ALLOW_REMOTE = False
    with pytest.raises(CommandError, match="DEV_INBOX_ALLOW_REMOTE"):
        call_command("demo", "--no-serve", "--host", ANY)
