"""Card-link tokens: one use, one person, one page; every failure falls back to sign-in."""

from __future__ import annotations

import pytest
from django.core import signing

from approvals.models import ApprovalDocument
from sso.models import LinkTokenUse
from sso.tokens import SALT, make_link_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(demo) -> ApprovalDocument:
    return ApprovalDocument.objects.get(external_id="PR-2026-0042")


def open_link(client, token: str):
    return client.get(f"/s/{token}/")


def assert_sign_in_page_without_the_document(client, response) -> None:
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "伺服电机" not in page.content.decode()


def test_link_signs_in_its_recipient_and_opens_the_document(client, users, document):
    response = open_link(client, make_link_token(users["li.si"], document.get_absolute_url()))
    assert response.status_code == 302 and response["Location"] == document.get_absolute_url()
    page = client.get(response["Location"])
    assert page.context["user"] == users["li.si"] and "伺服电机" in page.content.decode()


def test_second_use_of_a_link_falls_back_to_sign_in(client, users, document):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    assert open_link(client, token).status_code == 302
    client.logout()
    assert_sign_in_page_without_the_document(client, open_link(client, token))
    assert LinkTokenUse.objects.count() == 1


def test_recipient_tapping_again_while_signed_in_goes_straight_to_the_page(client, users, document):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    open_link(client, token)
    again = open_link(client, token)
    assert again.status_code == 302 and again["Location"] == document.get_absolute_url()


def test_expired_link_falls_back_to_sign_in(client, users, document, settings):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    settings.LINK_TOKEN_MAX_AGE = -1
    assert_sign_in_page_without_the_document(client, open_link(client, token))
    assert not LinkTokenUse.objects.exists()


def test_tampered_link_falls_back_to_sign_in(client, users, document):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    payload = signing.loads(token, salt=SALT)
    payload["u"] = users["zhang.san"].pk
    forged = signing.dumps(payload, salt="guessed", compress=True)
    assert_sign_in_page_without_the_document(client, open_link(client, forged))
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_sign_in_page_without_the_document(client, open_link(client, tampered))
    assert not LinkTokenUse.objects.exists()


def test_forwarded_link_opened_by_someone_signed_in_is_refused_and_not_consumed(client, users, document):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    client.force_login(users["chen.qi"])
    response = open_link(client, token)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get(document.get_absolute_url()).status_code == 404
    assert not LinkTokenUse.objects.exists()


def test_link_login_gives_a_new_session_key(client, users, document):
    client.get("/accounts/login/")
    client.cookies["sessionid"] = "attacker-planted-session"
    open_link(client, make_link_token(users["li.si"], document.get_absolute_url()))
    assert client.cookies["sessionid"].value != "attacker-planted-session"


def test_link_to_another_site_is_never_followed(client, users):
    with pytest.raises(ValueError):
        make_link_token(users["li.si"], "//evil.example/")
    payload = {"u": users["li.si"].pk, "t": "https://evil.example/", "j": "x1"}
    response = open_link(client, signing.dumps(payload, salt=SALT, compress=True))
    assert response.status_code == 302 and response["Location"] == "/approvals/"


def test_link_of_a_disabled_user_is_refused(client, users, document):
    token = make_link_token(users["li.si"], document.get_absolute_url())
    users["li.si"].is_active = False
    users["li.si"].save()
    assert_sign_in_page_without_the_document(client, open_link(client, token))
