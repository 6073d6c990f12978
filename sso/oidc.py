"""Enterprise sign-in with OpenID Connect (mozilla-django-oidc), configured from the issuer's discovery document.

On when ``OIDC_ISSUER`` is set. mozilla-django-oidc does the authorization-code flow (state, nonce,
PKCE); this module adds what it leaves out or to settings: endpoints and signing algorithm from
``<issuer>/.well-known/openid-configuration`` (cached), issuer / audience / expiry / issued-at checks
with a small clock leeway, clean refusals instead of 500s, the account policy for first sign-in
(``OIDC_USER_POLICY``), the remembered link (issuer, subject) → user, and claims → name, email, groups.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from sso.models import OidcSubject

log = logging.getLogger("sso.oidc")

POLICIES = ("auto_create", "link_verified_email", "deny")
# Asymmetric algorithms in order of preference; HS* (keyed with the client secret) only if nothing else is offered.
PREFERRED_ALGORITHMS = ("RS256", "ES256", "PS256", "RS384", "ES384", "PS384", "RS512", "ES512", "PS512", "EdDSA")
# mozilla-django-oidc settings that come from the discovery document instead of settings.py.
FROM_DISCOVERY = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class OidcError(Exception):
    """A sign-in refused for a reason worth logging (never shown to the user as is)."""


# --- discovery ----------------------------------------------------------------------------------

_discovery: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


def discovery(issuer: str | None = None) -> dict[str, Any]:
    """The provider's discovery document, fetched once per ``OIDC_DISCOVERY_TTL`` seconds and process."""
    issuer = (issuer if issuer is not None else settings.OIDC_ISSUER).strip()
    if not issuer:
        raise OidcError("OIDC is not configured (OIDC_ISSUER is unset)")
    with _discovery_lock:
        cached = _discovery.get(issuer)
        if cached and cached[0] > time.monotonic():
            return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise OidcError(f"no discovery document at {url}: {exc}") from exc
    if not isinstance(document, dict):
        raise OidcError(f"the discovery document at {url} is not a JSON object")
    # OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise OidcError(f"the discovery document at {url} names issuer {document.get('issuer')!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not document.get(key):
            raise OidcError(f"the discovery document at {url} has no {key}")
    with _discovery_lock:
        _discovery[issuer] = (time.monotonic() + settings.OIDC_DISCOVERY_TTL, document)
    return document


def clear_discovery_cache() -> None:
    with _discovery_lock:
        _discovery.clear()


def signing_algorithm(document: dict[str, Any]) -> str:
    """``OIDC_SIGN_ALGO`` if set, else the provider's best supported ID-token algorithm."""
    if settings.OIDC_RP_SIGN_ALGO:
        return settings.OIDC_RP_SIGN_ALGO
    offered = [a for a in document.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"]
    for algorithm in PREFERRED_ALGORITHMS:
        if algorithm in offered:
            return algorithm
    if offered:
        return offered[0]
    raise OidcError("the provider offers no usable ID token signing algorithm")


def oidc_setting(attr: str, *default: Any) -> Any:
    """mozilla-django-oidc's ``get_settings`` with endpoints and algorithm from discovery."""
    if attr in FROM_DISCOVERY:
        return discovery().get(FROM_DISCOVERY[attr])
    if attr == "OIDC_RP_SIGN_ALGO":
        return signing_algorithm(discovery())
    return import_from_settings(attr, *default)


def safe_next(request: Any, target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host: never an open redirect), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return None
    return target


# --- the backend ----------------------------------------------------------------------------------


class PortalOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with issuer, audience and time checks, and the portal's account policy."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds every backend for every authenticate(), password sign-ins too: no discovery
        # fetch here, the endpoints are read when an OIDC callback needs them.
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_JWKS_ENDPOINT"))
    OIDC_RP_SIGN_ALGO = property(lambda self: self.get_settings("OIDC_RP_SIGN_ALGO"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        # Only the OIDC callback view passes a nonce; a password sign-in never reaches the provider.
        if request is None or "nonce" not in kwargs or "password" in kwargs or not settings.OIDC_ENABLED:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (
            OidcError, SuspiciousOperation, jwt.PyJWTError, requests.RequestException, ValueError, KeyError, TypeError,
            IntegrityError,  # the same person's first sign-in racing in two tabs: the retry finds the link
        ) as exc:
            # Every refusal ends here, and the callback answers with the sign-in page, never a 500.
            log.warning("OIDC sign-in refused: %s", exc)
            request.oidc_refusal = str(exc)
            return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Signature, issuer, audience, expiry and issued-at (with ``OIDC_LEEWAY_SECONDS``), nonce."""
        algorithm = self.OIDC_RP_SIGN_ALGO
        header = jwt.get_unverified_header(token)
        if header.get("alg") != algorithm:
            raise OidcError(f"ID token signed with {header.get('alg')!r}, expected {algorithm!r}")
        key = self.OIDC_RP_CLIENT_SECRET if algorithm.startswith("HS") else self.retrieve_matching_jwk(token)
        is_id_token = "nonce" in kwargs  # verify_token() also reads signed userinfo answers
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=discovery()["issuer"],
            leeway=settings.OIDC_LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "sub"] if is_id_token else ["sub"]},
        )
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise OidcError("ID token for several audiences without this client as azp")
        if is_id_token and claims.get("nonce") != kwargs["nonce"]:
            raise OidcError("ID token nonce does not match this browser's sign-in")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.OIDC_OP_USER_ENDPOINT:
            return {}
        return super().get_userinfo(access_token, id_token, payload)

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub", payload["sub"]) != payload["sub"]:
            raise OidcError("userinfo is about another subject than the ID token")
        # Profile claims from userinfo (fresher), identity (iss, sub) from the verified ID token.
        claims = {**payload, **userinfo, "iss": payload["iss"], "sub": payload["sub"]}
        issuer, subject = str(claims["iss"]), str(claims["sub"])
        with transaction.atomic():
            link = OidcSubject.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
            if link is None:
                user = self.first_sign_in_user(claims)
                link = OidcSubject.objects.create(user=user, issuer=issuer, subject=subject)
                log.info("OIDC: %s %s linked to user %s (%s)", issuer, subject, user.pk, settings.OIDC_USER_POLICY)
            self.update_user(link.user, claims, link=link)
        return link.user

    def first_sign_in_user(self, claims: dict[str, Any]) -> Any:
        """The account for a subject seen for the first time, per ``OIDC_USER_POLICY``, or OidcError."""
        policy = settings.OIDC_USER_POLICY
        issuer, subject = claims["iss"], claims["sub"]
        if policy == "deny":
            raise OidcError(f"{issuer} subject {subject} is linked to no user and OIDC_USER_POLICY is deny")
        email = str(claims.get("email") or "").strip()
        verified = claims.get("email_verified") in (True, "true")
        candidates = list(self.UserModel.objects.filter(email__iexact=email, is_active=True)[:2]) if email else []
        # A verified address links to the one account holding it, unless that account already has
        # another subject of this issuer (a person has one account at their company's IdP).
        linkable = (
            candidates[0]
            if verified and len(candidates) == 1
            and not OidcSubject.objects.filter(user=candidates[0], issuer=issuer).exists()
            else None
        )
        if policy == "link_verified_email":
            if linkable is None:
                why = "no email" if not email else ("email not verified" if not verified else "no single free account")
                raise OidcError(f"{issuer} subject {subject} not linked: {why} (policy link_verified_email)")
            return linkable
        if linkable is not None:
            return linkable
        return self.create_user(claims)

    def create_user(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.create_user(self.free_username(claims), email=str(claims.get("email") or ""))

    def free_username(self, claims: dict[str, Any]) -> str:
        field = self.UserModel._meta.get_field(self.UserModel.USERNAME_FIELD)
        email = str(claims.get("email") or "")
        base = str(claims.get("preferred_username") or email.split("@")[0] or f"oidc-{claims['sub']}")
        base = base[: field.max_length - 4]
        candidate, n = base, 1
        while self.UserModel.objects.filter(**{self.UserModel.USERNAME_FIELD: candidate}).exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def update_user(self, user: Any, claims: dict[str, Any], link: OidcSubject | None = None) -> Any:
        """Name, email and groups from the claims; a claim the provider did not send changes nothing."""
        given, family, name = (str(claims.get(k) or "").strip() for k in ("given_name", "family_name", "name"))
        if given or family:
            user.first_name, user.last_name = given[:150], family[:150]
        elif name:
            user.first_name, user.last_name = name[:150], ""
        email = str(claims.get("email") or "").strip()
        if email and (claims.get("email_verified") in (True, "true") or not user.email):
            user.email = email
        user.save(update_fields=["first_name", "last_name", "email"])
        if link is not None:
            groups = claims.get("groups")
            if isinstance(groups, list):
                self.sync_groups(user, link, groups)
            link.last_sign_in = timezone.now()
            link.save(update_fields=["groups", "last_sign_in"])
        return user

    def sync_groups(self, user: Any, link: OidcSubject, names: list[Any]) -> None:
        """Groups named in the claim are created if missing and given; groups this provider gave
        before and no longer names are taken away. Groups given in admin are left alone."""
        wanted = sorted({str(n).strip()[:150] for n in names if str(n).strip()})
        for group_name in wanted:
            group, _ = Group.objects.get_or_create(name=group_name)
            user.groups.add(group)
        dropped = set(link.groups or []) - set(wanted)
        if dropped:
            user.groups.remove(*Group.objects.filter(name__in=dropped))
        link.groups = wanted
