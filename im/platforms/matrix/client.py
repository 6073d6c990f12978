"""A small Matrix client-server API client (httpx) for the portal's bot, and its error mapping.

Errors become ``TransportError``: 429 ``M_LIMIT_EXCEEDED`` waits ``retry_after_ms``; 5xx and network
failures are transient; 401/403/404 and other 4xx (revoked token, forbidden, unknown user, too big)
are permanent and carry the homeserver's ``errcode`` and message as the reason.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import quote

import httpx

from im.platforms.base import TransportError

logger = logging.getLogger(__name__)

API = "/_matrix/client/v3"
# Synapse scopes transaction ids per device: a fixed device id keeps exactly-once sending across
# re-logins with the bot's password (a fresh device would forget every earlier transaction id).
DEVICE_ID = "ERP_IM_PORTAL"

_tokens: dict[tuple[str, str], str] = {}
_tokens_lock = threading.Lock()


class MatrixError(TransportError):
    """A failed Matrix call, with the HTTP status and the homeserver's ``errcode`` when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, errcode: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.errcode = errcode


def error_from_response(response: httpx.Response, doing: str) -> MatrixError:
    """The ``TransportError`` for a non-2xx answer of the homeserver to ``doing``."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    errcode = str(body.get("errcode", ""))
    detail = f"{doing}: HTTP {status} {errcode} {body.get('error', '')}".strip()
    if status == 429 or errcode == "M_LIMIT_EXCEEDED":
        retry_after = None
        if isinstance(body.get("retry_after_ms"), int | float):
            retry_after = body["retry_after_ms"] / 1000
        elif response.headers.get("retry-after", "").isdigit():
            retry_after = float(response.headers["retry-after"])
        return MatrixError(detail, status=status, errcode=errcode, retry_after=retry_after)
    if status >= 500 or status == 408:
        return MatrixError(detail, status=status, errcode=errcode)
    if status == 401:
        detail = f"{detail} (the bot's access token was refused: set MATRIX_BOT_TOKEN or the bot's password)"
    return MatrixError(detail, status=status, errcode=errcode, permanent=True)


class MatrixClient:
    """The bot's view of one homeserver. A token, or a user and password to log in with (once per process)."""

    def __init__(
        self,
        homeserver: str,
        *,
        token: str = "",
        user: str = "",
        password: str = "",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not homeserver:
            raise TransportError("MATRIX_HOMESERVER_URL is not set", permanent=True)
        self.homeserver = homeserver.rstrip("/")
        self._token = token
        self._user = user
        self._password = password
        self._user_id = ""
        self._http = httpx.Client(base_url=self.homeserver, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------------
    def _access_token(self, *, fresh: bool = False) -> str:
        if self._token:
            return self._token
        if not (self._user and self._password):
            raise TransportError("set MATRIX_BOT_TOKEN, or MATRIX_BOT_USER and MATRIX_BOT_PASSWORD", permanent=True)
        key = (self.homeserver, self._user)
        with _tokens_lock:
            if fresh:
                _tokens.pop(key, None)
            if key not in _tokens:
                data = self._call("POST", f"{API}/login", auth=False, doing="log in as the bot", json={
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": self._user},
                    "password": self._password,
                    "device_id": DEVICE_ID,
                    "initial_device_display_name": "ERP IM portal",
                })
                _tokens[key] = data["access_token"]
            return _tokens[key]

    def _call(self, method: str, path: str, *, doing: str, auth: bool = True, **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._access_token()}"} if auth else {}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
            if response.status_code == 401 and auth and not self._token:
                # A logged-in token can expire; log in again once before calling it permanent.
                headers = {"Authorization": f"Bearer {self._access_token(fresh=True)}"}
                response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:  # connect, read, timeout: the homeserver may come back
            raise MatrixError(f"{doing}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return response.json()
        raise error_from_response(response, doing)

    # --- calls ------------------------------------------------------------------------------------
    def whoami(self) -> str:
        if not self._user_id:
            self._user_id = self._call("GET", f"{API}/account/whoami", doing="ask who the bot is")["user_id"]
        return self._user_id

    def user_exists(self, user_id: str) -> bool:
        """Whether the homeserver knows ``user_id`` (creating a room with an unknown invitee succeeds)."""
        try:
            self._call("GET", f"{API}/profile/{quote(user_id, safe='')}", doing=f"look up {user_id}")
        except MatrixError as exc:
            if exc.status == 404:
                return False
            if exc.status == 403:  # profiles limited to users who share a room: cannot tell, so try
                return True
            raise
        return True

    def direct_rooms(self) -> dict[str, list[str]]:
        """The bot's ``m.direct`` account data: user id → its direct-message room ids."""
        path = f"{API}/user/{quote(self.whoami(), safe='')}/account_data/m.direct"
        try:
            data = self._call("GET", path, doing="read the bot's direct rooms")
        except MatrixError as exc:
            if exc.status == 404:
                return {}
            raise
        return {k: list(v) for k, v in data.items() if isinstance(v, list)}

    def set_direct_rooms(self, rooms: dict[str, list[str]]) -> None:
        path = f"{API}/user/{quote(self.whoami(), safe='')}/account_data/m.direct"
        self._call("PUT", path, json=rooms, doing="save the bot's direct rooms")

    def account_data(self, event_type: str) -> dict[str, Any]:
        path = f"{API}/user/{quote(self.whoami(), safe='')}/account_data/{quote(event_type, safe='')}"
        try:
            return self._call("GET", path, doing=f"read {event_type}")
        except MatrixError as exc:
            if exc.status == 404:
                return {}
            raise

    def set_account_data(self, event_type: str, content: dict[str, Any]) -> None:
        path = f"{API}/user/{quote(self.whoami(), safe='')}/account_data/{quote(event_type, safe='')}"
        self._call("PUT", path, json=content, doing=f"save {event_type}")

    def create_direct_room(self, user_id: str) -> str:
        data = self._call("POST", f"{API}/createRoom", doing=f"create a direct room with {user_id}", json={
            "is_direct": True,
            "preset": "trusted_private_chat",
            "invite": [user_id],
        })
        return data["room_id"]

    def membership(self, room_id: str, user_id: str) -> str | None:
        """``join``, ``invite``, ``leave``, ``ban``…, or None when unknown or the bot cannot see the room."""
        path = f"{API}/rooms/{quote(room_id, safe='')}/state/m.room.member/{quote(user_id, safe='')}"
        try:
            return self._call("GET", path, doing=f"read {user_id}'s membership")["membership"]
        except MatrixError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def joined_members(self, room_id: str) -> list[str]:
        from urllib.parse import quote

        path = f"{API}/rooms/{quote(room_id, safe='')}/joined_members"
        answer = self._call("GET", path, doing="list room members")
        return sorted((answer.get("joined") or {}).keys())

    def invite(self, room_id: str, user_id: str) -> None:
        path = f"{API}/rooms/{quote(room_id, safe='')}/invite"
        self._call("POST", path, json={"user_id": user_id}, doing=f"invite {user_id}")

    def send(self, room_id: str, content: dict[str, Any], txn_id: str, event_type: str = "m.room.message") -> str:
        """Send one event; the same ``txn_id`` again (same device) returns the first event id, posting nothing."""
        path = f"{API}/rooms/{quote(room_id, safe='')}/send/{quote(event_type, safe='')}/{quote(txn_id, safe='')}"
        return self._call("PUT", path, json=content, doing=f"send to {room_id}")["event_id"]

    def redact(self, room_id: str, event_id: str, txn_id: str, reason: str = "") -> str:
        """Redact an event (its content is removed for everyone); the same ``txn_id`` again is a no-op."""
        path = (f"{API}/rooms/{quote(room_id, safe='')}/redact/{quote(event_id, safe='')}/"
                f"{quote(txn_id, safe='')}")
        body = {"reason": reason} if reason else {}
        return self._call("PUT", path, json=body, doing=f"redact {event_id}")["event_id"]

    def sync(self, since: str | None, *, timeout_ms: int, sync_filter: dict[str, Any], timeout: float) -> dict:
        params: dict[str, Any] = {"timeout": timeout_ms, "filter": json.dumps(sync_filter)}
        if since:
            params["since"] = since
        return self._call("GET", f"{API}/sync", params=params, timeout=timeout, doing="sync")
