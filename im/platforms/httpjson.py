"""What the WeCom, Feishu and DingTalk adapters share: JSON over HTTPS with an app access token.

- One token client per app: the adapter's ``access_token`` / ``with_app_token``, which the platform's
  login-free exchange uses too (one fetch, one cache entry, one table of "token rejected" codes).
- Every answer is read as JSON; the platform-specific ``classify`` turns it into a ``TransportError``
  (permanent or transient, with ``retry_after``) or lets it through.
- Network failures and 5xx are transient; the adapter never raises anything else for a platform answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
from django.core.cache import cache

from im.platforms.base import TransportError

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


# A cached app token is dropped this long before the platform says it expires.
TOKEN_MARGIN_SECONDS = 300


def _token_key(platform: str, name: str, client_id: str) -> str:
    return f"im:app-token:{platform}:{name}:{client_id}"


def cached_app_token(platform: str, name: str, fetch: Callable[[], tuple[str, int]], client_id: str) -> str:
    """The app's token from the cache, or ``fetch()``-ed and kept until shortly before it expires.

    Platforms rate-limit their token endpoints (WeCom, DingTalk: 2 h tokens meant to be reused), so the
    adapter and the login-free exchange of one app share this one entry.
    """
    key = _token_key(platform, name, client_id)
    token = cache.get(key)
    if token:
        return token
    token, expires_in = fetch()
    ttl = int(expires_in) - TOKEN_MARGIN_SECONDS
    if ttl > 0:
        cache.set(key, token, ttl)
    return token


def forget_app_token(platform: str, name: str, client_id: str) -> None:
    cache.delete(_token_key(platform, name, client_id))


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


def link_of(card: Any) -> str:
    """The card's link; a notice without data has none, and WeCom and DingTalk require one: the portal's home."""
    from django.conf import settings

    return card.link or settings.PORTAL_BASE_URL + "/"


def card_rows(card: Any) -> list[tuple[str, str]]:
    """The card's fields as (label, value) rows, its amount last (WeCom and DingTalk draw rows of text)."""
    from django.utils.translation import gettext as _

    rows = [(f.label, f.value) for f in card.fields]
    if card.amount:
        rows.append((_("Amount"), card.amount))
    return rows


class AppTokenAdapter:
    """Plumbing shared by adapters that call a JSON API with a cached app token (WeCom, Feishu,
    DingTalk): a config built from settings on first use, one JsonClient, and the token cache.

    A subclass names its ``platform``, ``config_class``, ``classify`` (errors → TransportError) and
    ``cache_slot`` (the cached credential's name), and says how to fetch a token (``fetch_token``)
    and whose it is (``token_owner``).
    """

    platform: str
    config_class: Any
    classify: Callable[..., Any]
    cache_slot = "access_token"
    # Tests of the whole portal (which builds adapters itself) set a fake platform here.
    default_transport: httpx.BaseTransport | None = None

    def __init__(self, config: Any = None, *, transport: httpx.BaseTransport | None = None) -> None:
        from django.conf import settings

        self._config = config
        self._client = JsonClient(self.platform, type(self).classify, transport=transport or self.default_transport,
                                  timeout=getattr(settings, "IM_PLATFORM_TIMEOUT", 10.0))

    @property
    def config(self) -> Any:
        if self._config is None:
            self._config = self.config_class.from_settings()
        return self._config

    def fetch_token(self, config: Any) -> tuple[str, int]:
        """Ask the platform for an app token: (token, seconds it lives)."""
        raise NotImplementedError

    def token_owner(self, config: Any) -> tuple[str, str]:
        """(client id, secret) the token belongs to: the cache key."""
        raise NotImplementedError

    def access_token(self) -> str:
        config = self.config
        try:
            return cached_app_token(self.platform, self.cache_slot, lambda: self.fetch_token(config),
                                    self.token_owner(config)[0])
        except TokenRejected as exc:  # refused while fetching: the app's own secret is wrong
            raise TransportError(str(exc), permanent=True) from exc

    def with_app_token(self, call: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """``call(token)``; when the platform rejects a cached token, fetch a fresh one once."""
        return with_token(call, self.access_token, self.forget_access_token)

    def forget_access_token(self) -> None:
        forget_app_token(self.platform, self.cache_slot, self.token_owner(self.config)[0])


class QueryTokenAdapter(AppTokenAdapter):
    """WeCom and DingTalk: ``GET {api_base}/gettoken?<credentials>`` → ``{access_token, expires_in}``, and
    every call carries the token as ``?access_token=``. A subclass names ``api_base`` and
    ``token_credentials``."""

    api_base: str

    def token_credentials(self, config: Any) -> dict[str, str]:
        """The query of the token request (corp id and secret, app key and secret)."""
        raise NotImplementedError

    def fetch_token(self, config: Any) -> tuple[str, int]:
        body = self._client.call("GET", f"{self.api_base}/gettoken", doing="gettoken",
                                 params=self.token_credentials(config))
        return body["access_token"], int(body.get("expires_in", 7200))

    def post(self, path: str, payload: dict[str, Any], *, doing: str) -> dict[str, Any]:
        def call(token: str) -> dict[str, Any]:
            return self._client.call("POST", f"{self.api_base}/{path}", params={"access_token": token},
                                     json=payload, doing=doing)

        return self.with_app_token(call)
