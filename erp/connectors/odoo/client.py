"""Odoo's external JSON-RPC API (17.0/18.0) over httpx: ``POST {base}/jsonrpc``.

As documented in https://www.odoo.com/documentation/17.0/developer/reference/external_api.html
(and the JSON-RPC variant in its "Odoo Online / web services" example): ``{"jsonrpc": "2.0",
"method": "call", "params": {"service": "common"|"object", "method": …, "args": […]}}``.
``common.authenticate(db, login, key, {})`` gives the uid (``false`` when refused); every model call
is ``object.execute_kw(db, uid, key, model, method, args, kwargs)`` with the API key in place of the
password (Odoo ≥ 14). Stateless: no session cookie to expire.

Failures come back as HTTP 200 with ``{"error": {"code": 200, "message": "Odoo Server Error",
"data": {"name": "odoo.exceptions.AccessError", "message": …, "arguments": […], "debug": …}}}``
(``odoo.http.serialize_exception``); ``data.name`` decides whether retrying can help.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from erp.connectors.base import ConnectorError

# Refusals and bad calls: the same call fails the same way next time.
PERMANENT_ERRORS = {
    "odoo.exceptions.AccessDenied",  # wrong login/API key
    "odoo.exceptions.AccessError",  # no right on the model or record
    "odoo.exceptions.UserError",  # the business rule refused (wrong state, …)
    "odoo.exceptions.ValidationError",
    "odoo.exceptions.MissingError",  # the record was deleted
    "odoo.exceptions.RedirectWarning",
    # Call-shape errors (unknown field or method, wrong arguments): retrying cannot fix them.
    "builtins.ValueError",
    "builtins.TypeError",
    "builtins.AttributeError",
    "builtins.KeyError",
    "werkzeug.exceptions.NotFound",
}
_ids = itertools.count(1)
# Test seam: the transport every client uses when none is passed (tests set an httpx.MockTransport).
default_transport: httpx.BaseTransport | None = None


class OdooError(ConnectorError):
    """An error Odoo reported in the body. ``kind`` is ``data.name`` (the exception's dotted name)."""

    def __init__(self, message: str, *, kind: str, permanent: bool) -> None:
        super().__init__(message, permanent=permanent)
        self.kind = kind


def error_from_body(error: Any) -> OdooError:
    """The JSON-RPC ``error`` object as an OdooError with Odoo's own message."""
    if not isinstance(error, dict):
        return OdooError(f"Odoo error: {error}", kind="Error", permanent=False)
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    kind = str(data.get("name") or error.get("message") or "Error")
    message = str(data.get("message") or error.get("message") or kind)
    if error.get("code") == 404:
        kind = "werkzeug.exceptions.NotFound"
    # Unknown names (a serialization failure, a server bug, a lock) are retried.
    permanent = kind in PERMANENT_ERRORS
    short = kind.rsplit(".", 1)[-1]
    return OdooError(f"Odoo {short}: {message}", kind=kind, permanent=permanent)


class OdooClient:
    """One Odoo user (login + API key) on one database."""

    def __init__(
        self, base_url: str, database: str, login: str, api_key: str, *, timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/jsonrpc"
        self.database = database
        self.login_name = login
        self._key = api_key
        self._http = httpx.Client(timeout=timeout, transport=transport or default_transport)
        self.uid: int | None = None

    def close(self) -> None:
        self._http.close()

    def call(self, service: str, method: str, *args: Any) -> Any:
        params = {"service": service, "method": method, "args": list(args)}
        body = {"jsonrpc": "2.0", "method": "call", "params": params, "id": next(_ids)}
        try:
            response = self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"Odoo unreachable: {exc.__class__.__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise ConnectorError(f"Odoo: HTTP {status}, try later")
        if status == 404:
            raise ConnectorError(f"Odoo: no JSON-RPC endpoint at {self.url} (404)", permanent=True)
        if status >= 400:
            raise ConnectorError(f"Odoo refused {service}.{method}: HTTP {status}", permanent=True)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ConnectorError(f"Odoo sent no JSON (HTTP {status})") from exc
        if not isinstance(payload, dict):
            raise ConnectorError("Odoo sent an unexpected answer")
        if payload.get("error"):
            raise error_from_body(payload["error"])
        return payload.get("result")

    def version(self) -> dict[str, Any]:
        return self.call("common", "version")

    def authenticate(self) -> int:
        uid = self.call("common", "authenticate", self.database, self.login_name, self._key, {})
        if not uid:  # Odoo answers false, not an error, to a wrong login or key
            raise ConnectorError(
                f"Odoo refused the login {self.login_name!r} on {self.database!r}: wrong login or API key",
                permanent=True,
            )
        self.uid = int(uid)
        return self.uid

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        if self.uid is None:
            self.authenticate()
        return self.call("object", "execute_kw", self.database, self.uid, self._key, model, method, args, kwargs or {})

    def search_read(
        self, model: str, domain: list, fields: list[str], *, order: str | None = None, limit: int | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"fields": fields}
        if order:
            kwargs["order"] = order
        if limit:
            kwargs["limit"] = limit
        if context:
            kwargs["context"] = context
        return self.execute_kw(model, "search_read", [domain], kwargs)

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
        return self.execute_kw(model, "read", [ids], {"fields": fields}) if ids else []
