"""Signed embed URLs: a widget framed inside an IM client authenticates with a token in its URL.

IM webviews and iframes often do not send the portal's session cookie (third-party context), so a
widget link carries ``?e=<token>``: signed, expiring, bound to one viewer and one widget path. It
authenticates that widget page, its htmx refetches and its websocket, and nothing else: it is not a
session and never signs anyone in elsewhere. Permissions are still checked on every render.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing

SALT = "widgets.embed"


@dataclass(frozen=True)
class EmbedClaims:
    user_id: int
    path: str


def make_embed_token(user: Any, path: str) -> str:
    if not path.startswith(("/w/", "/g/")):
        raise ValueError("embed tokens are for widget paths (and group boards)")
    return signing.dumps({"u": user.pk, "p": path}, salt=SALT, compress=True)


def embed_url(user: Any, path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}?e={make_embed_token(user, path)}"


def read_embed_token(token: str) -> EmbedClaims | None:
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.WIDGET_EMBED_MAX_AGE)
        return EmbedClaims(user_id=int(payload["u"]), path=str(payload["p"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def embed_viewer(token: str, path: str | None = None) -> Any | None:
    """The active user a token speaks for, if it is valid (and made for ``path``, when given).
    A widget's own sub-paths (its body partial) are covered by its token."""
    claims = read_embed_token(token or "")
    if claims is None:
        return None
    if path is not None and path != claims.path and not path.startswith(claims.path.rstrip("/") + "/"):
        return None
    return get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
