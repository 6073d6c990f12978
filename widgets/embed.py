"""Signed embed URLs: a widget framed inside an IM client authenticates with a token in its URL.

IM webviews and iframes often do not send the portal's session cookie (third-party context), so a
widget link carries ``?e=<token>``: signed, expiring, bound to one viewer and one widget path. It
authenticates that widget page, its htmx refetches and its websocket, and nothing else: it is not a
session and never signs anyone in elsewhere. Permissions are still checked on every render.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.urls import Resolver404, ResolverMatch, resolve

SALT = "widgets.embed"

# The widget pages a token may name (url names in the ``widgets`` namespace). Not ``/w/`` itself,
# not a body partial, not the Matrix bootstrap: one token opens exactly one widget.
WIDGET_PAGES = frozenset({"stock", "order", "receivables", "approval", "pending"})


@dataclass(frozen=True)
class EmbedClaims:
    user_id: int
    path: str


# A group's board (boards/, ``/g/<group>/``) is embedded the same way (Matrix pins it as the room's
# widget); its token also covers the board's partials and its action forms, nothing else.
BOARD_PARTS = frozenset({"body", "stock", "act"})


def widget_page(path: str) -> ResolverMatch | None:
    """The widget page (or group board) ``path`` names exactly, or None (a prefix such as ``/w/``, a
    body partial, another page of the portal, a path with a query or a host)."""
    path = unquote(path)
    if not path.startswith(("/w/", "/g/")) or "?" in path or "#" in path or "\\" in path or "//" in path:
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if (match.namespace, match.url_name) == ("boards", "board"):
        return match
    if match.namespace != "widgets" or match.url_name not in WIDGET_PAGES:
        return None
    return match


def _covers(claimed: str, path: str) -> bool:
    """A token covers its page and that page's body partial; a board's token also its other parts."""
    if path in (claimed, claimed + "body/"):
        return True
    if not claimed.startswith("/g/") or not path.startswith(claimed):
        return False
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.namespace == "boards" and match.url_name in BOARD_PARTS


def make_embed_token(user: Any, path: str) -> str:
    if widget_page(path) is None:
        raise ValueError("embed tokens are for one widget page, e.g. /w/stock/SKU-123/")
    return signing.dumps({"u": user.pk, "p": unquote(path)}, salt=SALT, compress=True)


def embed_url(user: Any, path: str) -> str:
    return f"{settings.PORTAL_BASE_URL}{path}?e={make_embed_token(user, path)}"


def read_embed_token(token: str) -> EmbedClaims | None:
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.WIDGET_EMBED_MAX_AGE)
        claims = EmbedClaims(user_id=int(payload["u"]), path=str(payload["p"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    # Tokens signed before they named one page (``/w/``) are worth nothing now.
    return claims if widget_page(claims.path) is not None else None


def embed_viewer(token: str, path: str | None = None) -> Any | None:
    """The active user a token speaks for, if it is valid (and made for ``path``, when given).
    The token covers its page and that page's body partial (its live refetch), nothing else."""
    claims = read_embed_token(token or "")
    if claims is None:
        return None
    if path is not None and not _covers(claims.path, unquote(path)):
        return None
    return get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()


# The live topics of each embeddable page, by (URL namespace, URL name; None: every page of the namespace).
# Widgets registers its own pages; apps with pages of their own (inventory's order, boards) theirs.
_embed_topics: dict[tuple[str, str | None], Callable[[dict, Any], frozenset[str]]] = {}


def register_embed_topics(namespace: str, url_name: str | None,
                          topics: Callable[[dict, Any], frozenset[str]]) -> None:
    """``topics(url kwargs, viewer)``: what a socket opened with an embed token for that page may watch."""
    _embed_topics[(namespace, url_name)] = topics


def embed_topics(token: str, user: Any) -> frozenset[str]:
    """The live topics the widget named by ``token`` shows: all a socket opened with it may watch.
    Each subscription is still checked against the viewer's permissions."""
    claims = read_embed_token(token or "")
    match = widget_page(claims.path) if claims is not None else None
    if match is None:
        return frozenset()
    topics = _embed_topics.get((match.namespace, match.url_name)) or _embed_topics.get((match.namespace, None))
    return topics(match.kwargs, user) if topics is not None else frozenset()
