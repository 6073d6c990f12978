"""Card-link tokens: signed, expiring, single-use, bound to one recipient, one page and one platform.

A token is exchanged once for a *link session* (``sso.links``): this browser acts as the recipient on
that one page for ``LINK_SESSION_SECONDS``, and is anonymous everywhere else. It never signs anyone
in. A forwarded link opened in a browser signed in as someone else is refused without being spent; a
link already used, expired or tampered falls back to the sign-in page. The token is spent in the same
transaction that saves the grant, so a request that fails on the way (a 503) leaves it unspent.
Platforms with login-free identity carry ``login_free_url()`` instead (``sso.links.card_link_for``).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import RFC3986_SUBDELIMS

from sso import links
from sso.models import LinkTokenUse

SALT = "sso.link-token.v1"


class LinkTokenError(Exception):
    """Why a token cannot be exchanged: expired, invalid, used, or wrong_user."""

    def __init__(self, code: str, target: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.target = target


@dataclass(frozen=True)
class LinkClaims:
    user_id: int
    target: str
    jti: str
    platform: str = ""


def make_link_token(user: Any, target: str, *, platform: str = "") -> str:
    if not target.startswith("/") or target.startswith("//"):
        raise ValueError("a link target is a local path")
    payload = {"u": user.pk, "t": target, "j": secrets.token_urlsafe(12)}
    if platform:
        payload["p"] = platform
    return signing.dumps(payload, salt=SALT, compress=True)


# The platform whose cards are being built (``im.cards.build_cards`` sets it when a batch's cards all go
# to one platform): a builder's link then names it at once, instead of being read and signed again for
# it by ``sso.links.card_link_for`` (two of a card's three signing operations, issue #19).
_building_for: ContextVar[str] = ContextVar("card_links_platform", default="")


@contextmanager
def links_for_platform(platform: str) -> Iterator[None]:
    """Links made inside name ``platform`` unless their caller names one."""
    token = _building_for.set(platform)
    try:
        yield
    finally:
        _building_for.reset(token)


def make_link_url(user: Any, target: str, *, platform: str = "") -> str:
    token = make_link_token(user, target, platform=platform or _building_for.get())
    head, tail = _link_route(get_script_prefix(), get_urlconf())
    return settings.PORTAL_BASE_URL + head + quote(token, safe=RFC3986_SUBDELIMS + "~:@") + tail


@functools.lru_cache(maxsize=16)
def _link_route(script_prefix: str, urlconf: Any) -> tuple[str, str]:
    """The link route's path split around its token, reversed once per script prefix and URLconf:
    ``reverse()`` on every link cost as much as signing it. The token is quoted as ``reverse()`` would."""
    marker = "0token0"
    head, _, tail = reverse("sso:link", args=[marker], urlconf=urlconf).partition(marker)
    return head, tail


def read_link_token(token: str) -> LinkClaims:
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.LINK_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise LinkTokenError("expired") from exc
    except signing.BadSignature as exc:
        raise LinkTokenError("invalid") from exc
    try:
        return LinkClaims(user_id=int(payload["u"]), target=str(payload["t"]), jti=str(payload["j"]),
                          platform=str(payload.get("p", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkTokenError("invalid") from exc


def redeem_link_token(token: str, request: Any) -> str:
    """Exchange ``token`` for a link session in ``request``'s browser; returns the target path.

    Raises LinkTokenError. A target no link may grant (a list, a page of another site) is returned
    without a grant and the token stays unspent: that page then asks for a real sign-in. Nothing is
    spent unless the grant is saved with it.
    """
    claims = read_link_token(token)
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None:
        raise LinkTokenError("invalid")
    current = request.user
    if current.is_authenticated:
        if current.pk != user.pk:
            raise LinkTokenError("wrong_user", claims.target)
        return claims.target  # the recipient, signed in for real already: nothing to spend
    if any(grant.jti == claims.jti for grant in links.grants(request.session)):
        return claims.target  # tapped again in the same browser while its grant lives
    if links.page_for(claims.target) is None:
        return claims.target
    with transaction.atomic():
        try:
            with transaction.atomic():
                LinkTokenUse.objects.create(jti=claims.jti, user=user, target=claims.target)
        except IntegrityError as exc:
            raise LinkTokenError("used", claims.target) from exc
        # A new session key (a planted session id is worthless), saved with the spend: both or neither.
        request.session.cycle_key()
        links.add_grant(request.session, links.new_grant(user, claims.target, claims.platform, claims.jti))
        request.session.save()
    return claims.target
