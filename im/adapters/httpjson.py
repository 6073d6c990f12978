"""What the WeCom, Feishu and DingTalk adapters share: JSON over HTTPS with an app access token.

- Tokens are cached through ``sso.im_login`` (same cache keys as the login-free code exchange, so the
  sign-in and the adapter reuse one token per app instead of each fetching its own).
- Every answer is read as JSON; the platform-specific ``classify`` turns it into a ``TransportError``
  (permanent or transient, with ``retry_after``) or lets it through.
- Network failures and 5xx are transient; the adapter never raises anything else for a platform answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from im.adapters.base import TransportError

logger = logging.getLogger(__name__)

# ``classify(status, headers, body, doing)`` → an error to raise, or None when the answer is a success.
Classifier = Callable[[int, httpx.Headers, dict[str, Any], str], "TransportError | None"]


class TokenRejected(TransportError):
    """The platform refused the cached access token (revoked or expired early): fetch a new one once."""


class JsonClient:
    """A small httpx client for one platform. Tests pass an ``httpx.MockTransport``."""

    def __init__(
        self,
        platform: str,
        classify: Classifier,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.platform = platform
        self.classify = classify
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def call(self, method: str, url: str, *, doing: str, **kwargs: Any) -> dict[str, Any]:
        """One call; the JSON body on success, else the classified ``TransportError``."""
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # connect, read, timeout: the platform may come back
            raise TransportError(f"{self.platform} {doing}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 500 and not body:
            raise TransportError(f"{self.platform} {doing}: HTTP {response.status_code}")
        error = self.classify(response.status_code, response.headers, body, doing)
        if error is not None:
            raise error
        if not response.is_success:  # a classifier that let a 4xx through: still not a success
            raise TransportError(f"{self.platform} {doing}: HTTP {response.status_code}", permanent=True)
        return body


def cached_app_token(platform: str, name: str, fetch: Callable[[], tuple[str, int]], client_id: str,
                     secret: str, settings: dict[str, Any] | None = None) -> str:
    """An app token from the cache ``sso.im_login`` keeps (same key), or ``fetch()``-ed and kept."""
    from sso.im_login.base import AppConfig, LoginFreeExchange

    exchange = LoginFreeExchange(AppConfig(client_id=client_id, secret=secret, settings=settings or {}))
    exchange.platform = platform
    return exchange.cached_token(name, fetch)


def forget_app_token(platform: str, name: str, client_id: str) -> None:
    from sso.im_login.base import AppConfig, LoginFreeExchange

    exchange = LoginFreeExchange(AppConfig(client_id=client_id, secret="", settings={}))
    exchange.platform = platform
    exchange.forget_token(name)


def with_token(call: Callable[[str], dict[str, Any]], token: Callable[[], str], forget: Callable[[], None]) -> dict:
    """``call(token)``, once more with a fresh token when the platform refused the cached one."""
    try:
        return call(token())
    except TokenRejected:
        forget()
        try:
            return call(token())
        except TokenRejected as exc:
            raise TransportError(str(exc), permanent=True) from exc


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def clip_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes (WeCom and DingTalk count bytes), cut on a character boundary."""
    text = str(text)
    if len(text.encode()) <= limit:
        return text
    out = text.encode()[: max(limit - 3, 0)].decode(errors="ignore")
    return out + "…"
