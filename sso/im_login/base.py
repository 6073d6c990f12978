"""The interface every platform's login-free code exchange implements, and what they share.

Each platform gives the page a short-lived, single-use code (WeCom OAuth redirect, Feishu
authorize redirect, DingTalk ``dd.getAuthCode``); the server exchanges it with the platform's
API for the user's id. Nothing the browser says about who it is is trusted.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

# Tests replace this with an ``httpx.MockTransport``; production uses httpx's own transport.
http_transport: httpx.BaseTransport | None = None
TIMEOUT = httpx.Timeout(10.0)


@dataclass(frozen=True)
class PlatformUser:
    """Who the platform says is signing in. ``tenant`` is the corp id / tenant key / team id."""

    platform: str
    tenant: str
    external_id: str
    email: str = ""
    mobile: str = ""
    name: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class ExchangeError(Exception):
    """A code could not be exchanged. ``reason`` picks the message shown to the person:

    ``code_invalid`` (expired, already used or unknown code), ``not_member`` (the platform knows
    the person but not as a member of the company), ``not_configured``, ``platform_error``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AppConfig:
    """One platform app's credentials, from allauth (settings or a SocialApp in admin)."""

    client_id: str
    secret: str
    settings: dict[str, Any]


class LoginFreeExchange:
    """Exchange one login-free code for the platform user. Subclasses set ``platform``."""

    platform: str = ""

    def __init__(self, config: AppConfig) -> None:
        self.config = config

    def exchange(self, code: str, redirect_uri: str = "") -> PlatformUser:
        """``redirect_uri``: the one the code was requested with, when the platform compares it."""
        raise NotImplementedError

    def expected_tenant(self) -> str:
        """The company's own tenant on this platform; only its users may be linked automatically."""
        return str(self.config.settings.get("tenant", ""))

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        """Where to send a browser that has no code yet, or None when the page must get one itself."""
        return None

    # Shared helpers ------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return httpx.Client(transport=http_transport, timeout=TIMEOUT, follow_redirects=False)

    def request_json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One API call; any transport failure or non-JSON answer becomes ``platform_error``.

        HTTP error statuses are not raised here: Feishu answers a used code with 400 and a JSON
        body whose ``code`` says why, which the caller must see.
        """
        try:
            with self.client() as client:
                response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ExchangeError("platform_error", f"{self.platform}: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise ExchangeError("platform_error", f"{self.platform}: HTTP {response.status_code}, not JSON") from exc
        if not isinstance(body, dict):
            raise ExchangeError("platform_error", f"{self.platform}: unexpected answer")
        if response.status_code >= 500:
            raise ExchangeError("platform_error", f"{self.platform}: HTTP {response.status_code}")
        return body


def app_config(platform: str) -> AppConfig | None:
    """The platform's app from allauth (``SOCIALACCOUNT_PROVIDERS`` or a SocialApp row), if any."""
    from allauth.socialaccount.adapter import get_adapter

    apps = get_adapter().list_apps(None, provider=platform)
    if not apps:
        return None
    app = apps[0]
    return AppConfig(client_id=app.client_id, secret=app.secret, settings=dict(app.settings or {}))


_EXCHANGES: dict[str, type[LoginFreeExchange]] = {}


def register_exchange(cls: type[LoginFreeExchange]) -> None:
    """A platform's login-free exchange; each platform package registers its own (``ImConfig.ready``),
    so this module never imports them."""
    _EXCHANGES[cls.platform] = cls


def exchange_class(platform: str) -> type[LoginFreeExchange] | None:
    return _EXCHANGES.get(platform)


def get_exchange(platform: str) -> LoginFreeExchange | None:
    """The exchange for ``platform`` when it is known and configured, else None."""
    cls = _EXCHANGES.get(platform)
    if cls is None:
        return None
    config = app_config(platform)
    if config is None or not config.client_id or not config.secret:
        return None
    return cls(config)
