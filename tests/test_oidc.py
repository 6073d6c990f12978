"""Company sign-in (OpenID Connect) against a real provider: npm oidc-provider, tests/oidc_provider/provider.js.

Every test walks the real round trip: the portal's /oidc/authenticate/ → the provider's authorization
endpoint → its login and consent forms (posted like a browser) → the portal's callback, which
exchanges the code at the provider's token endpoint, checks the ID token against the provider's
JWKS and reads its userinfo. The bad cases use the provider's own clock and token lifetime (skew,
expiry) or its test-only fault switch, which re-signs the ID token with the provider's own key
(wrong issuer, wrong audience) or edits it without re-signing (tampered). Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client

from sso.models import OidcSubject
from sso.oidc import clear_discovery_cache

from .conftest import service_missing
from .live_server import free_port, run_live_server
from .test_browser import outside_playwright_loop

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "portal", "portal-test-secret"
TEST_SERVER = "http://testserver"
STARTUP_TIMEOUT = 15.0
LOGIN_PATH = "/accounts/login/"
SCOPES = "openid email profile groups"  # oidc-provider releases the groups claim for the groups scope

pytestmark = pytest.mark.django_db


# --- the provider -------------------------------------------------------------------------------


@dataclass
class OidcProvider:
    issuer: str
    process: subprocess.Popen
    log_path: Path

    def faults(self, **faults: Any) -> None:
        """Clock skew, ID token lifetime, re-signed or tampered ID tokens (see provider.js)."""
        httpx.post(f"{self.issuer}/__test__/faults", json=faults, timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.issuer}/__test__/faults", timeout=5).raise_for_status()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


@contextmanager
def run_provider(log_dir: Path, redirect_uris: list[str], port: int = 0) -> Iterator[OidcProvider]:
    """node provider.js on a loopback port (a free one by default); stopped afterwards."""
    node = shutil.which("node")
    if node is None:
        service_missing("Node.js (node)")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        service_missing("the test OIDC provider's packages (npm ci --prefix tests/oidc_provider; make test does it)")
    log_path = log_dir / f"oidc-provider-{port or 'any'}.log"
    args = [node, "provider.js", "--port", str(port), "--test-faults", "--client-id", CLIENT_ID]
    args += ["--client-secret", CLIENT_SECRET]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=PROVIDER_DIR, stdout=subprocess.PIPE, stderr=log)
    try:
        # provider.js prints {"issuer": ..., "port": ...} once it listens.
        ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the OIDC provider did not start:\n{log_path.read_text(errors='replace')}")
        provider = OidcProvider(issuer=json.loads(line)["issuer"], process=process, log_path=log_path)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[OidcProvider]:
    with run_provider(tmp_path_factory.mktemp("oidc"), [f"{TEST_SERVER}/oidc/callback/"]) as running:
        yield running


@pytest.fixture
def oidc(provider, settings) -> Iterator[OidcProvider]:
    """The portal configured for ``provider`` (policy auto_create unless a test changes it)."""
    settings.OIDC_ISSUER = provider.issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_USER_POLICY = "auto_create"
    settings.OIDC_RP_SCOPES = SCOPES
    settings.OIDC_LEEWAY_SECONDS = 60
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "sso.oidc.PortalOIDCBackend"]
    clear_discovery_cache()
    provider.reset()
    yield provider
    provider.reset()
    clear_discovery_cache()


# --- the round trip -----------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The provider's login and consent pages: each form's action and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def start(client: Client, next_path: str | None = None) -> str:
    """The portal's "Sign in with company account": returns the provider URL it sends the browser to."""
    response = client.get("/oidc/authenticate/", {"next": next_path} if next_path else {})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def at_provider(authorize_url: str, account: str, portal: str = TEST_SERVER) -> str:
    """Sign in at the provider as ``account`` and consent, as a browser would; returns the callback URL."""
    url = authorize_url
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        response = browser.get(url)
        for _ in range(12):
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                if url.startswith(portal + "/"):
                    return url
                response = browser.get(url)
                continue
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
            forms = _Forms()
            forms.feed(response.text)
            assert forms.forms, f"no form at {url}: {response.text[:500]}"
            form = forms.forms[0]
            data = dict(form["inputs"])
            if "login" in data:
                data.update(login=account, password="any password")  # devInteractions accept any
            url = urljoin(url, form["action"])
            response = browser.post(url, data=data)
    raise AssertionError(f"the provider never sent the browser back to the portal (last: {url})")


def sign_in(client: Client, account: str, next_path: str | None = None) -> tuple[str, Any]:
    """The whole round trip; returns (callback URL, the portal's answer to it)."""
    callback = at_provider(start(client, next_path), account)
    return callback, client.get(callback)


def signed_in_user(client: Client) -> Any:
    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None


def assert_refused(response: Any, client: Client, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """A clean refusal: back to the sign-in page with a message, nobody signed in, the reason logged."""
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(LOGIN_PATH)
    assert signed_in_user(client) is None
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "企业账号登录失败" in page.content.decode()  # zh-Hans, the default language
    logged = " ".join(r.getMessage() for r in caplog.records if r.name == "sso.oidc")
    assert reason in logged, logged


# --- the happy path -------------------------------------------------------------------------------


def test_full_sign_in_creates_user_maps_claims_and_lands_on_next(oidc, client):
    callback, response = sign_in(client, "alice", next_path="/approvals/42/")

    assert parse_qs(urlsplit(callback).query)["iss"] == [oidc.issuer]  # RFC 9207, from the real provider
    assert response.status_code == 302
    assert response["Location"] == "/approvals/42/"
    user = signed_in_user(client)
    assert user is not None and user.username == "alice"
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Wong", "alice@corp.example")
    assert sorted(user.groups.values_list("name", flat=True)) == ["approvers", "finance"]
    link = OidcSubject.objects.get(user=user)
    assert (link.issuer, link.subject, link.groups) == (oidc.issuer, "alice", ["approvers", "finance"])
    assert client.session.get("_auth_user_backend") == "sso.oidc.PortalOIDCBackend"


def test_second_sign_in_finds_the_link_and_syncs_only_provider_groups(oidc, client):
    sign_in(client, "alice")
    user = signed_in_user(client)
    link = OidcSubject.objects.get(user=user)
    # Since last time: the provider dropped "old-team"; an admin gave "local-admins" by hand.
    link.groups = [*link.groups, "old-team"]
    link.save()
    user.groups.add(Group.objects.create(name="old-team"), Group.objects.create(name="local-admins"))
    user.first_name = "Stale"
    user.save()

    other = Client()
    _, response = sign_in(other, "alice")

    assert response.status_code == 302
    assert signed_in_user(other).pk == user.pk
    assert get_user_model().objects.filter(username__startswith="alice").count() == 1
    user.refresh_from_db()
    assert user.first_name == "Alice"
    assert sorted(user.groups.values_list("name", flat=True)) == ["approvers", "finance", "local-admins"]
    assert OidcSubject.objects.count() == 1


def test_login_page_shows_company_button_only_when_configured(oidc, client, settings):
    page = client.get(LOGIN_PATH, {"next": "/approvals/7/"}).content.decode()
    assert 'href="/oidc/authenticate/?next=/approvals/7/"' in page
    assert "使用企业账号登录" in page
    english = client.get(LOGIN_PATH, headers={"accept-language": "en"}).content.decode()
    assert "Sign in with company account" in english

    settings.OIDC_ENABLED = False
    page = client.get(LOGIN_PATH).content.decode()
    assert "/oidc/authenticate/" not in page
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_password_sign_in_still_works_with_oidc_on(oidc, client):
    get_user_model().objects.create_user("zhang.san", password="demo")
    response = client.post(LOGIN_PATH, {"username": "zhang.san", "password": "demo", "next": "/approvals/"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert signed_in_user(client).username == "zhang.san"


def test_discovery_document_is_fetched_once(oidc, client, monkeypatch):
    import requests

    fetched = []
    real_get = requests.get

    def counting_get(url, *args, **kwargs):
        fetched.append(url)
        return real_get(url, *args, **kwargs)

    monkeypatch.setattr(requests, "get", counting_get)
    sign_in(client, "alice")
    sign_in(Client(), "bob")
    assert [u for u in fetched if u.endswith("/.well-known/openid-configuration")] == [
        oidc.issuer + "/.well-known/openid-configuration"
    ]


# --- token checks -----------------------------------------------------------------------------------


def test_wrong_issuer_is_refused(oidc, client, caplog):
    oidc.faults(id_token={"iss": "https://idp.other-company.example"})
    _, response = sign_in(client, "alice")
    assert_refused(response, client, caplog, "Invalid issuer")
    assert not get_user_model().objects.filter(username="alice").exists()


def test_wrong_audience_is_refused(oidc, client, caplog):
    oidc.faults(id_token={"aud": "another-app"})
    _, response = sign_in(client, "alice")
    assert_refused(response, client, caplog, "Audience doesn't match")


def test_tampered_id_token_is_refused(oidc, client, caplog):
    oidc.faults(id_token={"tamper": True})
    _, response = sign_in(client, "bob")
    assert_refused(response, client, caplog, "Signature verification failed")
    assert not OidcSubject.objects.exists()


def test_expired_id_token_is_refused(oidc, client, caplog):
    # The provider's clock 5 min behind and its ID tokens living 2 min: expired 3 min ago, beyond the leeway.
    oidc.faults(clock_skew_seconds=-300, id_token_ttl=120)
    _, response = sign_in(client, "alice")
    assert_refused(response, client, caplog, "Signature has expired")


def test_provider_one_second_ahead_is_accepted(oidc, client):
    oidc.faults(clock_skew_seconds=1)
    _, response = sign_in(client, "alice", next_path="/approvals/")
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert signed_in_user(client).username == "alice"


def test_skew_is_refused_without_leeway(oidc, client, caplog, settings):
    # The control for the test above: the leeway is what admits a provider ahead of us.
    settings.OIDC_LEEWAY_SECONDS = 0
    oidc.faults(clock_skew_seconds=30)
    _, response = sign_in(client, "alice")
    assert_refused(response, client, caplog, "not yet valid (iat)")


def test_provider_ten_minutes_ahead_is_refused(oidc, client, caplog):
    oidc.faults(clock_skew_seconds=600)
    _, response = sign_in(client, "alice")
    assert_refused(response, client, caplog, "not yet valid (iat)")


def test_provider_down_is_a_clean_refusal(oidc, client, settings, caplog):
    settings.OIDC_ISSUER = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = client.get("/oidc/authenticate/", {"next": "/approvals/3/"})
    assert response.status_code == 302
    assert response["Location"] == LOGIN_PATH + "?next=%2Fapprovals%2F3%2F"
    assert "no discovery document" in caplog.text


# --- state, next, session -----------------------------------------------------------------------------


def test_replayed_state_is_refused(oidc, client, caplog):
    callback, response = sign_in(client, "alice")
    assert response.status_code == 302
    state = parse_qs(urlsplit(callback).query)["state"][0]
    assert state not in client.session.get("oidc_states", {})  # used up by the first callback
    session_key = client.session.session_key

    # The same browser again (back button, a double submit): refused, still signed in as before.
    again = client.get(callback)
    assert again.status_code == 302 and again["Location"].startswith(LOGIN_PATH)
    assert client.session.session_key == session_key
    assert "state not found" in caplog.text

    # Someone who copied the callback URL, in their own browser: refused, nobody signed in.
    thief = Client()
    stolen = thief.get(callback)
    assert stolen.status_code == 302 and stolen["Location"].startswith(LOGIN_PATH)
    assert signed_in_user(thief) is None


def test_authorization_response_from_another_issuer_is_refused(oidc, client, caplog):
    callback = at_provider(start(client), "alice")
    forged = callback.replace("iss=" + quote(oidc.issuer, safe=""), "iss=" + quote("https://evil.example", safe=""))
    assert forged != callback
    response = client.get(forged)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN_PATH)
    assert signed_in_user(client) is None
    assert "authorization response from issuer 'https://evil.example'" in caplog.text


def test_admin_lists_company_account_links(oidc, client, admin_client):
    sign_in(client, "alice")
    page = admin_client.get("/admin/sso/oidcsubject/")
    assert page.status_code == 200
    assert oidc.issuer in page.content.decode()


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/approvals/", "/\\evil.example/", "http://testserver/approvals/1/",
     "javascript:alert(1)"],
)
def test_open_redirect_in_next_is_refused(oidc, client, next_path):
    _, response = sign_in(client, "alice", next_path=next_path)
    assert response.status_code == 302
    assert response["Location"] == "/approvals/"  # LOGIN_REDIRECT_URL, not the offered target
    assert signed_in_user(client).username == "alice"


def test_session_key_is_rotated_on_sign_in(oidc, client):
    # An attacker gets a session from the portal and plants its cookie in the victim's browser.
    attacker = Client()
    start(attacker)
    planted = attacker.cookies["sessionid"].value
    client.cookies["sessionid"] = planted

    _, response = sign_in(client, "alice", next_path="/approvals/")

    assert response.status_code == 302
    assert signed_in_user(client).username == "alice"
    assert client.cookies["sessionid"].value != planted
    assert not Session.objects.filter(session_key=planted).exists()
    assert attacker.get("/approvals/").status_code == 302  # the planted id signs nobody in


# --- account policy -------------------------------------------------------------------------------


def test_link_verified_email_links_the_existing_account(oidc, client, settings):
    settings.OIDC_USER_POLICY = "link_verified_email"
    li_si = get_user_model().objects.create_user("li.si", email="LI.SI@corp.example", password="demo")

    _, response = sign_in(client, "li.si")

    assert response.status_code == 302 and not response["Location"].startswith(LOGIN_PATH)
    assert signed_in_user(client).pk == li_si.pk
    assert OidcSubject.objects.get(issuer=oidc.issuer, subject="li.si").user_id == li_si.pk
    assert get_user_model().objects.count() == 1


def test_link_verified_email_refuses_an_unverified_email(oidc, client, settings, caplog):
    settings.OIDC_USER_POLICY = "link_verified_email"
    get_user_model().objects.create_user("li.si", email="li.si@corp.example", password="demo")

    _, response = sign_in(client, "mallory")  # claims li.si's address, not verified

    assert_refused(response, client, caplog, "email not verified")
    assert not OidcSubject.objects.exists()
    assert get_user_model().objects.count() == 1


def test_link_verified_email_refuses_an_unknown_person(oidc, client, settings, caplog):
    settings.OIDC_USER_POLICY = "link_verified_email"
    _, response = sign_in(client, "bob")
    assert_refused(response, client, caplog, "no single free account")
    assert not get_user_model().objects.exists()


def test_auto_create_never_links_by_unverified_email(oidc, client):
    li_si = get_user_model().objects.create_user("li.si", email="li.si@corp.example", password="demo")
    _, response = sign_in(client, "mallory")
    assert response.status_code == 302
    mallory = signed_in_user(client)
    assert mallory.pk != li_si.pk and mallory.username == "mallory"


def test_deny_admits_only_linked_accounts(oidc, client, settings, caplog):
    settings.OIDC_USER_POLICY = "deny"
    bob = get_user_model().objects.create_user("bob.local", email="bob@corp.example")
    OidcSubject.objects.create(user=bob, issuer=oidc.issuer, subject="bob")

    _, response = sign_in(client, "bob")
    assert response.status_code == 302 and signed_in_user(client).pk == bob.pk

    other = Client()
    _, response = sign_in(other, "alice")
    assert_refused(response, other, caplog, "OIDC_USER_POLICY is deny")
    assert not get_user_model().objects.filter(email="alice@corp.example").exists()


def test_inactive_linked_user_is_refused(oidc, client):
    bob = get_user_model().objects.create_user("bob", email="bob@corp.example", is_active=False)
    OidcSubject.objects.create(user=bob, issuer=oidc.issuer, subject="bob")
    _, response = sign_in(client, "bob")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN_PATH)
    assert signed_in_user(client) is None


# --- in a browser -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def portal_with_provider(django_db_setup, tmp_path_factory) -> Iterator[tuple[Any, OidcProvider]]:
    """Daphne configured for a provider on a port chosen first; the provider is started once Daphne's
    own port (its callback URL) is known. Discovery is lazy, so Daphne needs no provider to start."""
    from django.conf import settings

    log_dir = tmp_path_factory.mktemp("oidc-browser")
    provider_port = free_port()
    env = {
        "OIDC_ISSUER": f"http://127.0.0.1:{provider_port}",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_USER_POLICY": "link_verified_email",
        "OIDC_SCOPES": SCOPES,
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # run_live_server hands its environment to Daphne
    try:
        with (
            run_live_server(settings.DATABASES["default"], settings.SECRET_KEY, log_dir) as server,
            run_provider(log_dir, [f"{server.url}/oidc/callback/"], port=provider_port) as provider,
        ):
            yield server, provider
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_company_sign_in_lands_on_the_card_page(portal_with_provider, chromium, settings):
    from approvals.models import ApprovalDocument
    from portal.demo import setup_demo

    server, provider = portal_with_provider
    settings.PORTAL_BASE_URL = server.url
    outside_playwright_loop(setup_demo)  # its live publishes run away from Playwright's loop
    li_si = get_user_model().objects.get(username="li.si")
    li_si.email = "li.si@corp.example"  # the address the company IdP vouches for
    li_si.save()
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    card_page = f"/approvals/{document.pk}/"

    context = chromium.new_context(base_url=server.url, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # A card link opened on a desktop browser without a session ends on the sign-in page with next.
        page.goto(f"{LOGIN_PATH}?next={card_page}")
        page.click("#oidc-sign-in")
        page.wait_for_url(f"{provider.issuer}/interaction/**")
        page.fill("input[name=login]", "li.si")
        page.fill("input[name=password]", "any password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{provider.issuer}/interaction/**")  # consent
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}{card_page}")
        assert page.locator("header .who").inner_text() == "李四"
        assert page.locator("h1").inner_text() == document.title
    finally:
        context.close()
    assert not errors, errors
    assert OidcSubject.objects.get(subject="li.si").user_id == li_si.pk
