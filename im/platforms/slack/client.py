"""A small Slack Web API client (httpx) and its error mapping.

Slack answers HTTP 200 with ``{"ok": false, "error": "<code>"}`` for most failures; rate limits are
HTTP 429 with ``Retry-After`` (or, rarely, ``error: "ratelimited"``). Mapping to ``TransportError``:
429/``ratelimited``, 5xx, network failures and Slack's own ``internal_error``/``fatal_error``/
``service_unavailable``/``request_timeout`` are transient; every other error code (unknown user or
channel, revoked or missing token, deactivated account, message too long, bad blocks…) is permanent.
"""

from __future__ import annotations

from typing import Any

import httpx

from im.platforms.base import TransportError

API = "https://slack.com/api/"
TRANSIENT_ERRORS = frozenset({
    "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
})
# Named here so that the reason shown in admin says what to fix; any other code is permanent too.
PERMANENT_HINTS = {
    "invalid_auth": "the bot token was refused: set SLACK_BOT_TOKEN",
    "not_authed": "no bot token: set SLACK_BOT_TOKEN",
    "token_revoked": "the bot token was revoked: reinstall the app and set SLACK_BOT_TOKEN",
    "account_inactive": "the bot's or the user's account is deactivated",
    "user_not_found": "no such Slack member",
    "channel_not_found": "no such channel, or the bot is not in it",
    "msg_too_long": "the message is too long for Slack",
    "missing_scope": "the app lacks an OAuth scope (chat:write, im:write, groups:write, pins:write)",
}


class SlackError(TransportError):
    def __init__(self, message: str, *, error: str = "", status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error = error
        self.status = status


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return None


def error_from_response(response: httpx.Response, doing: str) -> SlackError | None:
    """The ``SlackError`` for Slack's answer to ``doing``, or None when it succeeded."""
    status = response.status_code
    if status == 429:
        return SlackError(f"{doing}: HTTP 429 ratelimited", error="ratelimited", status=status,
                          retry_after=_retry_after(response))
    if status >= 500 or status == 408:
        return SlackError(f"{doing}: HTTP {status}", status=status)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return SlackError(f"{doing}: HTTP {status}, not JSON", status=status, permanent=status >= 400)
    if body.get("ok"):
        return None
    error = str(body.get("error") or f"http_{status}")
    detail = f"{doing}: {error}"
    if error in PERMANENT_HINTS:
        detail += f" ({PERMANENT_HINTS[error]})"
    if error in TRANSIENT_ERRORS:
        return SlackError(detail, error=error, status=status, retry_after=_retry_after(response))
    return SlackError(detail, error=error, status=status, permanent=True)


class SlackClient:
    def __init__(self, token: str, *, timeout: float = 10.0, base_url: str = API,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise TransportError("SLACK_BOT_TOKEN is not set", permanent=True)
        self._token = token
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, payload: dict[str, Any], *, ok_errors: frozenset[str] = frozenset()) -> dict[str, Any]:
        """POST a Web API method as JSON; ``ok_errors`` are error codes that count as success here."""
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json; charset=utf-8"}
        try:
            response = self._http.post(method, json=payload, headers=headers)
        except httpx.TransportError as exc:
            raise SlackError(f"{method}: {type(exc).__name__}: {exc}") from exc
        error = error_from_response(response, method)
        if error is None:
            return response.json()
        if error.error in ok_errors:
            return response.json()
        raise error

    def post_to_response_url(self, url: str, payload: dict[str, Any]) -> None:
        """Answer an interaction through its ``response_url`` (no token: the URL is the credential)."""
        if not url.startswith("https://hooks.slack.com/") and not url.startswith(str(self._http.base_url)):
            raise SlackError(f"not a Slack response_url: {url[:60]}", permanent=True)
        try:
            response = self._http.post(url, json=payload)
        except httpx.TransportError as exc:
            raise SlackError(f"response_url: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise SlackError(f"response_url: HTTP {response.status_code}", status=response.status_code,
                             permanent=response.status_code < 500 and response.status_code != 429)
