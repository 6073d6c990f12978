"""Frappe's REST API (ERPNext v14/v15) over httpx: ``/api/resource`` and ``/api/method``.

Auth is the documented token header ``Authorization: token <api_key>:<api_secret>``
(https://docs.frappe.io/framework/user/en/guides/integration/rest_api/token_based_authentication).
Lists: ``GET /api/resource/<DocType>?fields=[…]&filters=[…]&limit_page_length=0`` → ``{"data": […]}``;
one document: ``GET /api/resource/<DocType>/<name>`` → ``{"data": {…}}``; whitelisted methods:
``POST /api/method/<dotted.path>`` → ``{"message": …}`` (https://docs.frappe.io/framework/user/en/api/rest).

Errors carry the exception's HTTP status (``frappe.exceptions``: PermissionError 403, ValidationError
and its subclasses 417, DoesNotExistError 404, DuplicateEntryError 409, AuthenticationError 401) and a
body built by ``frappe.utils.response.report_error``: ``exc_type`` always, ``exception``/``exc`` when
tracebacks are allowed, and ``_server_messages`` (a JSON list of JSON-encoded ``{"message": …}``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from erp.connectors.base import ConnectorError
from erp.connectors.notes import plain

# ValidationError subclasses that describe a race, not a refusal: a retry re-reads and may pass.
TRANSIENT_TYPES = {"TimestampMismatchError", "DocumentLockedError", "QueryDeadlockError", "QueryTimeoutError"}
# Test seam: the transport every client uses when none is passed (tests set an httpx.MockTransport).
default_transport: httpx.BaseTransport | None = None


class FrappeError(ConnectorError):
    """An error answer. ``kind`` is Frappe's ``exc_type`` (or ``HTTP <status>`` without one)."""

    def __init__(self, message: str, *, kind: str, status: int, permanent: bool) -> None:
        super().__init__(message, permanent=permanent)
        self.kind = kind
        self.status = status


def server_messages(body: dict[str, Any]) -> list[str]:
    """The texts of ``_server_messages`` (a JSON string of a list of JSON strings), as plain text."""
    raw = body.get("_server_messages")
    if not raw:
        return []
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
        messages = []
        for item in items:
            decoded = json.loads(item) if isinstance(item, str) else item
            text = decoded.get("message") if isinstance(decoded, dict) else decoded
            if text:
                messages.append(plain(str(text)))
        return messages
    except (ValueError, TypeError, AttributeError):
        return [str(raw)]


def error_from_response(status: int, body: dict[str, Any]) -> FrappeError:
    kind = str(body.get("exc_type") or f"HTTP {status}")
    messages = server_messages(body)
    text = "; ".join(messages) or str(body.get("exception") or body.get("message") or kind)
    transient = kind in TRANSIENT_TYPES or status == 429 or status >= 500
    permanent = not transient and 400 <= status < 500
    return FrappeError(f"ERPNext {kind}: {text}", kind=kind, status=status, permanent=permanent)


class FrappeClient:
    def __init__(
        self, base_url: str, api_key: str, api_secret: str, *, timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.Client(
            timeout=timeout, transport=transport or default_transport,
            headers={"Authorization": f"token {api_key}:{api_secret}", "Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, self.base_url + path, params=params, json=json_body)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"ERPNext unreachable: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code >= 400:
            raise error_from_response(response.status_code, body)
        return body

    @staticmethod
    def resource(doctype: str, name: str = "") -> str:
        path = f"/api/resource/{quote(doctype)}"
        return f"{path}/{quote(name, safe='')}" if name else path

    def get_doc(self, doctype: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.resource(doctype, name))["data"]
        except FrappeError as exc:
            if exc.status == 404:
                return None
            raise

    def get_list(self, doctype: str, fields: list[str], filters: list | None = None, *, order_by: str = "",
                 limit: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"fields": json.dumps(fields), "limit_page_length": limit}
        if filters:
            params["filters"] = json.dumps(filters)
        if order_by:
            params["order_by"] = order_by
        return self.request("GET", self.resource(doctype), params=params)["data"]

    def insert(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", self.resource(doctype), json_body=doc)["data"]

    def method(self, dotted: str, *, http: str = "POST", **data: Any) -> Any:
        if http == "GET":
            return self.request("GET", f"/api/method/{dotted}", params=data or None).get("message")
        return self.request("POST", f"/api/method/{dotted}", json_body=data).get("message")
