"""Tryton JSON-RPC over HTTP (httpx): login, session header, typed values, error classification.

Tryton answers most failures with HTTP 200 and ``{"error": [name, args]}``, so the body decides:
``UserError``/``UserWarning``/``AccessError`` (permission, validation) are permanent; network errors,
5xx and 429 are transient. See docs/integration.md, "Tryton connector".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
from decimal import Decimal
from typing import Any

import httpx

from erp.connectors.base import ConnectorError

PERMANENT_ERRORS = {"UserError", "UserWarning", "AccessError", "LoginException", "RPCError"}
_ids = itertools.count(1)
# Sessions per (endpoint, login, password digest), shared by the clients of one process: Tryton's
# login hashes the password (about a second on a busy server), and every poll and writeback builds a
# new connector. A session Tryton no longer knows gets 401/403 and one fresh login (``call``).
_sessions: dict[tuple[str, str, str], tuple[str, int]] = {}


class TrytonError(ConnectorError):
    """An error Tryton reported in the body. ``kind`` is Tryton's exception name."""

    def __init__(self, message: str, *, kind: str, permanent: bool) -> None:
        super().__init__(message, permanent=permanent)
        self.kind = kind


def decode(value: Any) -> Any:
    """Tryton's JSON objects (``{"__class__": "Decimal", …}``) to Python values, recursively."""
    if isinstance(value, list):
        return [decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__class__")
    if kind == "Decimal":
        return Decimal(value["decimal"])
    if kind == "datetime":
        return dt.datetime(
            value["year"], value["month"], value["day"],
            value.get("hour", 0), value.get("minute", 0), value.get("second", 0), value.get("microsecond", 0),
        )
    if kind == "date":
        return dt.date(value["year"], value["month"], value["day"])
    if kind == "time":
        return dt.time(
            value.get("hour", 0), value.get("minute", 0), value.get("second", 0), value.get("microsecond", 0)
        )
    if kind == "timedelta":
        return dt.timedelta(seconds=value["seconds"])
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return {key: decode(item) for key, item in value.items()}


def encode(value: Any) -> Any:
    """Python values to Tryton's JSON objects (datetimes must be naive UTC)."""
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
            "hour": value.hour, "minute": value.minute, "second": value.second, "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    return value


def error_from_body(error: Any) -> TrytonError:
    """The ``error`` member of a Tryton answer as a TrytonError with a readable message."""
    if isinstance(error, list) and error:
        kind = str(error[0])
        args = error[1] if len(error) > 1 else []
        if isinstance(args, list) and args and isinstance(args[0], str):
            message = args[0]
            if len(args) > 1 and isinstance(args[1], str) and args[1]:
                message = f"{message} ({args[1]})"
        else:
            message = str(args) if args else kind
    else:
        kind, message = "Error", str(error)
    # Unknown names are server-side failures (a locked database, a bug): retrying may help.
    permanent = kind in PERMANENT_ERRORS
    return TrytonError(f"Tryton {kind}: {message}", kind=kind, permanent=permanent)


class TrytonClient:
    """One user's session on one Tryton database. Logs in lazily and again when the session expires."""

    def __init__(
        self, base_url: str, database: str, login: str, password: str, *, timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/{database}/rpc/"
        self.login_name = login
        self._password = password
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._auth: str | None = None
        self.user_id: int | None = None
        self._context: dict[str, Any] | None = None
        self._session_key = (self.url, login, hashlib.sha256(password.encode()).hexdigest())
        if self._session_key in _sessions:
            self._auth, self.user_id = _sessions[self._session_key]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrytonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, method: str, params: list[Any], *, auth: bool) -> Any:
        headers = {"Authorization": self._auth} if auth and self._auth else {}
        body = {"id": next(_ids), "method": method, "params": encode(params)}
        try:
            response = self._http.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"Tryton unreachable: {exc.__class__.__name__}: {exc}") from exc
        status = response.status_code
        if status == 429:
            raise ConnectorError("Tryton: too many requests (429), try later")
        if status >= 500:
            raise ConnectorError(f"Tryton server error: HTTP {status}")
        if status == 401:
            raise TrytonError("Tryton: authentication failed (401)", kind="Unauthorized", permanent=True)
        if status == 403:
            raise TrytonError("Tryton: session refused (403)", kind="Forbidden", permanent=True)
        if status == 404:
            raise ConnectorError(f"Tryton: no database at {self.url} (404)", permanent=True)
        if status >= 400:
            raise ConnectorError(f"Tryton refused the call {method}: HTTP {status}", permanent=True)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ConnectorError(f"Tryton sent no JSON (HTTP {status})") from exc
        if payload.get("error"):
            raise error_from_body(payload["error"])
        return decode(payload.get("result"))

    def login(self) -> int:
        try:
            result = self._post("common.db.login", [self.login_name, {"password": self._password}, "en"], auth=False)
        except TrytonError as exc:
            if exc.kind == "Unauthorized":
                raise ConnectorError(
                    f"Tryton refused the login {self.login_name!r}: wrong login or password", permanent=True
                ) from exc
            raise
        user_id, session = result[0], result[1]
        token = base64.b64encode(f"{self.login_name}:{user_id}:{session}".encode()).decode()
        self._auth = f"Session {token}"
        self.user_id = user_id
        _sessions[self._session_key] = (self._auth, user_id)
        return user_id

    @property
    def context(self) -> dict[str, Any]:
        """The user's context (company, employee, language), which every model call ends with."""
        if self._context is None:
            self._context = self.call("model.res.user.get_preferences", [True, {}])
        return self._context

    def call(self, method: str, params: list[Any]) -> Any:
        if self._auth is None:
            self.login()
        try:
            return self._post(method, params, auth=True)
        except TrytonError as exc:
            if exc.kind not in {"Unauthorized", "Forbidden"}:
                raise
            # The session expired (server restart, timeout): one new login, one more try.
            self._auth = None
            _sessions.pop(self._session_key, None)
            self.login()
            return self._post(method, params, auth=True)

    def model(self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None) -> Any:
        """``model.<model>.<method>(*args, context)`` with the user's context merged with ``context``."""
        ctx = dict(self.context)
        ctx.update(context or {})
        return self.call(f"model.{model}.{method}", [*args, ctx])

    def search_read(
        self, model: str, domain: list, fields: list[str], *, order: list | None = None, limit: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        return self.model(model, "search_read", domain, 0, limit, order, fields, context=context)


def dumps(value: Any) -> str:
    return json.dumps(encode(value), ensure_ascii=False)
