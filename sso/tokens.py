"""Card-link tokens: signed, expiring, single-use, bound to one recipient and one page.

A token is exchanged once for a session (``sso.views.link``). A forwarded link opened in a browser
signed in as someone else is refused; a link already used, expired or tampered falls back to the
sign-in page. (A forwarded link nobody opened yet is closed by the IM platforms' login-free codes,
which prove who is tapping: see docs/architecture.md.)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse

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


def make_link_token(user: Any, target: str) -> str:
    if not target.startswith("/") or target.startswith("//"):
        raise ValueError("a link target is a local path")
    payload = {"u": user.pk, "t": target, "j": secrets.token_urlsafe(12)}
    return signing.dumps(payload, salt=SALT, compress=True)


def make_link_url(user: Any, target: str) -> str:
    return settings.PORTAL_BASE_URL + reverse("sso:link", args=[make_link_token(user, target)])


def read_link_token(token: str) -> LinkClaims:
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.LINK_TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise LinkTokenError("expired") from exc
    except signing.BadSignature as exc:
        raise LinkTokenError("invalid") from exc
    try:
        return LinkClaims(user_id=int(payload["u"]), target=str(payload["t"]), jti=str(payload["j"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise LinkTokenError("invalid") from exc


def redeem_link_token(token: str, current_user: Any) -> tuple[Any, str]:
    """Consume ``token`` for a sign-in; returns (user, target path) or raises LinkTokenError.

    ``current_user`` is whoever the browser is signed in as already (maybe anonymous).
    """
    claims = read_link_token(token)
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None:
        raise LinkTokenError("invalid")
    if current_user.is_authenticated and current_user.pk != user.pk:
        raise LinkTokenError("wrong_user", claims.target)
    try:
        with transaction.atomic():
            LinkTokenUse.objects.create(jti=claims.jti, user=user, target=claims.target)
    except IntegrityError as exc:
        raise LinkTokenError("used", claims.target) from exc
    return user, claims.target
