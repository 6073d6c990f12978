"""A card link is not a login: it grants a short link session on the one page it names.

Tried as an attacker would: an anonymous browser with a forwarded link, the same browser reaching for
everything else (lists, bulk approval, other documents and widgets, the API, other live topics), a
decision without proof of who taps, a replay, a request that fails half-way.
"""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError

from approvals import selectors
from approvals.models import ApprovalDocument, Decision
from sso.models import LinkDecisionCheck, LinkTokenUse
from sso.tokens import make_link_token
from widgets.consumers import LiveConsumer

DOC = "PR-2026-0042"


@pytest.fixture
def document(demo) -> ApprovalDocument:
    return ApprovalDocument.objects.get(external_id=DOC)


@pytest.fixture
def other_document(users, document) -> ApprovalDocument:
    """Another document li.si may see and decide when signed in for real."""
    for other in ApprovalDocument.objects.exclude(pk=document.pk).order_by("pk"):
        if selectors.document_for(users["li.si"], other.pk) is not None:
            return other
    pytest.fail("the demo has no second document li.si may see")


def tap(client, user, target: str, platform: str = "devinbox"):
    return client.get(f"/s/{make_link_token(user, target, platform=platform)}/")


def asks_for_sign_in(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_link_session_opens_only_its_own_page(client, users, document, other_document):
    path = document.get_absolute_url()
    assert tap(client, users["li.si"], path)["Location"] == path
    page = client.get(path)
    assert page.status_code == 200 and "伺服电机" in page.content.decode()
    assert 'id="link-session"' in page.content.decode()  # marked as opened from a card
    assert client.get(f"{path}panel/").status_code == 200
    # Everything else asks for a real sign-in: the pending list, bulk approval, another document,
    # the pending widget and another document's widget.
    for elsewhere in ("/approvals/", "/notifications/bulk-approve/", other_document.get_absolute_url(),
                      f"{other_document.get_absolute_url()}panel/", "/w/pending/",
                      f"/w/approval/{other_document.pk}/"):
        assert asks_for_sign_in(client.get(elsewhere)), elsewhere
    assert asks_for_sign_in(client.get("/admin/")) or client.get("/admin/").status_code == 302
    # The API with the link session's cookie: nobody is signed in.
    for url in ("/api/approvals/pending/", f"/api/approvals/{document.pk}/"):
        assert client.get(url).status_code in (401, 403), url
    response = client.post(f"/api/approvals/{document.pk}/decision", {"outcome": "approved"},
                           content_type="application/json")
    assert response.status_code in (401, 403)
    # Deciding on another document with the link session's cookie decides nothing.
    response = client.post(f"{other_document.get_absolute_url()}decide/", {"outcome": "approved"})
    assert asks_for_sign_in(response)
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_the_link_session_is_short_lived(client, users, document, settings, monkeypatch):
    settings.LINK_SESSION_SECONDS = 300
    path = document.get_absolute_url()
    tap(client, users["li.si"], path)
    assert client.get(path).status_code == 200
    later = time.time() + 301
    monkeypatch.setattr(time, "time", lambda: later)
    assert asks_for_sign_in(client.get(path))


@pytest.mark.django_db
def test_deciding_through_a_link_needs_the_recipients_password(client, users, document):
    path = document.get_absolute_url()
    tap(client, users["li.si"], path, platform="webhook")
    page = client.get(path).content.decode()
    assert 'name="link_password"' in page
    for password in ("", "wrong"):
        response = client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": f"k-{password}",
                                                  "link_password": password}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and 'class="error"' in response.content.decode()
        assert not Decision.objects.exists()
    response = client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": "k-right",
                                              "link_password": "demo"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    decision = Decision.objects.get()
    assert decision.actor == users["li.si"] and decision.outcome == "approved"


@pytest.mark.django_db
def test_a_platform_set_to_full_sign_in_never_decides_from_a_link(client, users, document):
    LinkDecisionCheck.objects.create(platform="webhook", requirement=LinkDecisionCheck.Check.SIGNIN)
    path = document.get_absolute_url()
    tap(client, users["li.si"], path, platform="webhook")
    page = client.get(path).content.decode()
    assert 'id="link-check"' in page and 'name="outcome"' not in page
    client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": "k1", "link_password": "demo"})
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_a_platform_set_to_a_one_time_code_sends_it_to_the_recipients_im(client, users, document):
    import re

    from im.platforms.devinbox.models import DevInboxMessage

    LinkDecisionCheck.objects.create(platform="devinbox", requirement=LinkDecisionCheck.Check.CODE)
    path = document.get_absolute_url()
    tap(client, users["li.si"], path, platform="devinbox")  # a browser that never signed in to li.si's phone
    assert 'name="link_code"' in client.get(path).content.decode()
    decide = f"{path}decide/"
    asked = client.post(decide, {"link_send_code": "1", "idempotency_key": "k0"}, HTTP_HX_REQUEST="true")
    assert asked.status_code == 200 and not Decision.objects.exists()
    sent = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic__startswith="linkcode.")
    code = re.search(r"\d{6}", sent.card["title"]).group()
    wrong = "000000" if code != "000000" else "111111"
    client.post(decide, {"outcome": "approved", "idempotency_key": "k1", "link_code": wrong})
    assert not Decision.objects.exists()
    client.post(decide, {"outcome": "approved", "idempotency_key": "k2", "link_code": code})
    assert Decision.objects.get().actor == users["li.si"]


@pytest.mark.django_db
def test_a_one_time_code_is_void_after_five_wrong_tries(client, users, document):
    import re

    from im.platforms.devinbox.models import DevInboxMessage

    LinkDecisionCheck.objects.create(platform="devinbox", requirement=LinkDecisionCheck.Check.CODE)
    path = document.get_absolute_url()
    tap(client, users["li.si"], path, platform="devinbox")
    client.post(f"{path}decide/", {"link_send_code": "1"})
    sent = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic__startswith="linkcode.")
    code = re.search(r"\d{6}", sent.card["title"]).group()
    wrong = "000000" if code != "000000" else "111111"
    for attempt in range(5):
        client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": f"w{attempt}", "link_code": wrong})
    client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": "right", "link_code": code})
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_a_real_sign_in_decides_without_a_recheck(client, users, document):
    client.force_login(users["li.si"])
    path = document.get_absolute_url()
    assert 'name="link_password"' not in client.get(path).content.decode()
    client.post(f"{path}decide/", {"outcome": "approved", "idempotency_key": "k1"})
    assert Decision.objects.get().actor == users["li.si"]


@pytest.mark.django_db
def test_a_request_that_fails_after_the_check_does_not_spend_the_link(client, users, document, monkeypatch):
    token = make_link_token(users["li.si"], document.get_absolute_url(), platform="devinbox")
    real_save = SessionStore.save
    calls = {"n": 0}

    def flaky_save(self, must_create=False):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("database is locked")
        return real_save(self, must_create=must_create)

    monkeypatch.setattr(SessionStore, "save", flaky_save)
    failed = client.get(f"/s/{token}/")
    assert failed.status_code == 503
    assert not LinkTokenUse.objects.exists()
    # The 503 page says what to do, in the recipient's language (zh-Hans by default).
    assert "重试" in failed.content.decode() or "再试" in failed.content.decode()
    retry = client.get(f"/s/{token}/")
    assert retry.status_code == 302 and retry["Location"] == document.get_absolute_url()
    assert LinkTokenUse.objects.count() == 1
    assert client.get(document.get_absolute_url()).status_code == 200


@pytest.mark.django_db
def test_the_busy_page_speaks_english_to_an_english_browser(client, users, document, monkeypatch):
    def locked(self, must_create=False):
        raise OperationalError("database is locked")

    monkeypatch.setattr(SessionStore, "save", locked)
    token = make_link_token(users["li.si"], document.get_absolute_url(), platform="devinbox")
    failed = client.get(f"/s/{token}/", HTTP_ACCEPT_LANGUAGE="en")
    html = failed.content.decode()
    assert failed.status_code == 503 and failed["Retry-After"]
    assert "Try again" in html and f'href="/s/{token}/"' in html and "重试" not in html
    assert not LinkTokenUse.objects.exists()


@pytest.mark.django_db
def test_a_link_replayed_in_another_browser_is_refused(client, users, document, django_user_model):
    from django.test import Client

    token = make_link_token(users["li.si"], document.get_absolute_url(), platform="devinbox")
    assert client.get(f"/s/{token}/").status_code == 302
    # The same browser tapping again keeps its grant; a second browser gets the sign-in page.
    assert client.get(f"/s/{token}/")["Location"] == document.get_absolute_url()
    other = Client()
    replay = other.get(f"/s/{token}/")
    assert asks_for_sign_in(replay)
    assert asks_for_sign_in(other.get(document.get_absolute_url()))
    assert LinkTokenUse.objects.count() == 1


@pytest.mark.django_db
def test_cards_on_login_free_platforms_carry_the_platforms_proof_not_a_token(users, document, settings):
    from im.cards import build_card
    from sso.tokens import read_link_token

    settings.SOCIALACCOUNT_PROVIDERS = {
        "wecom": {"APPS": [{"client_id": "wwcorp", "secret": "s", "settings": {"agent_id": "1000002"}}]},
    }
    card = build_card(document.topic, users["li.si"], "wecom")
    assert card.link.startswith(settings.PORTAL_BASE_URL + "/sso/im/wecom/?next=")
    assert "/s/" not in card.link
    settings.SOCIALACCOUNT_PROVIDERS = {"slack": {"APPS": [{"client_id": "c", "secret": "s", "settings": {}}]}}
    slack = build_card(document.topic, users["li.si"], "slack")
    assert slack.link.startswith(settings.PORTAL_BASE_URL + "/accounts/slack/login/?process=login&next=%2Fapprovals%2F")
    # Without the platform's sign-in configured, the card keeps a token naming the platform.
    unconfigured = build_card(document.topic, users["li.si"], "feishu")
    assert read_link_token(unconfigured.link.split("/s/", 1)[1].rstrip("/")).platform == "feishu"
    plain = build_card(document.topic, users["li.si"], "webhook")
    token = plain.link.removeprefix(settings.PORTAL_BASE_URL + "/s/").rstrip("/")
    claims = read_link_token(token)
    assert claims.platform == "webhook" and claims.target == document.get_absolute_url()


def _session_with_a_grant(client, user, target: str) -> str:
    tap(client, user, target)
    return client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
async def test_a_link_sessions_socket_hears_only_its_own_page(client, settings, monkeypatch):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    await sync_to_async(setup_demo)()
    li_si = await get_user_model().objects.aget(username="li.si")
    document = await ApprovalDocument.objects.aget(external_id=DOC)
    other = await sync_to_async(lambda: next(
        d for d in ApprovalDocument.objects.exclude(pk=document.pk).order_by("pk")
        if selectors.document_for(li_si, d.pk) is not None))()
    session_key = await sync_to_async(_session_with_a_grant)(client, li_si, document.get_absolute_url())

    async def socket():
        communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
        communicator.scope["user"] = AnonymousUser()
        communicator.scope["session"] = SessionStore(session_key)
        assert (await communicator.connect())[0]
        return communicator

    communicator = await socket()
    await communicator.send_json_to({"subscribe": document.topic})
    assert await communicator.receive_json_from() == {"subscribed": document.topic}
    for topic in (other.topic, f"inbox.{li_si.pk}"):
        await communicator.send_json_to({"subscribe": topic})
        assert await communicator.receive_json_from() == {"refused": topic}
    await communicator.disconnect()
    # Once the grant has expired, its own topic is refused too.
    later = time.time() + settings.LINK_SESSION_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    communicator = await socket()
    await communicator.send_json_to({"subscribe": document.topic})
    assert await communicator.receive_json_from() == {"refused": document.topic}
    await communicator.disconnect()


def test_card_link_tokens_never_reach_the_logs():
    from portal.observability.logging import redact

    line = "Service Unavailable: /s/eyJ1IjoyLCJ0IjoiL2FwcHJvdmFscy8xLyJ9:1xaPXA:RHV3KNFg0b28oCCJXBVS/"
    assert "eyJ1" not in redact(line) and "/s/***" in redact(line)


@pytest.mark.django_db
def test_a_batchs_card_links_name_each_rows_platform_and_are_signed_once_each(users, document, monkeypatch):
    from django.core import signing

    from im.cards import build_cards
    from sso.tokens import read_link_token

    real_dumps, signed = signing.dumps, []
    monkeypatch.setattr(signing, "dumps", lambda *args, **kwargs: signed.append(args) or real_dumps(*args, **kwargs))

    def platforms_of(cards) -> list[str]:
        return [read_link_token(card.link.split("/s/", 1)[1].rstrip("/")).platform for card in cards]

    li_si = users["li.si"]
    same = build_cards([(document.topic, li_si, "webhook"), (document.topic, li_si, "webhook")])
    assert len(signed) == 2 and platforms_of(same) == ["webhook", "webhook"]
    assert same[0].link != same[1].link  # a token per card, each single-use
    mixed = build_cards([(document.topic, li_si, "webhook"), (document.topic, li_si, "devinbox")])
    assert platforms_of(mixed) == ["webhook", "devinbox"]
    assert {read_link_token(card.link.split("/s/", 1)[1].rstrip("/")).target for card in same + mixed} == {
        document.get_absolute_url()}
