"""An httpx transport over the standard library's ``http.client``, for the outbox's many small posts.

Adapters speak httpx (``httpx.Request`` in, ``httpx.Response`` out), so their contract tests run
through ``httpx.MockTransport`` and production through this transport with the same code above it.
Why not httpx's own ``HTTPTransport``: for one small JSON post to a receiver on the same network its
pool, h11 state machine and stream wrappers cost about 1.0 ms of CPU, ``http.client`` about 0.4
(``bench/worker_profile.py``, issue #19), and a worker's sends are a fifth of its CPU.

What it keeps from httpcore's pool: one kept-alive connection per origin (per thread); a kept
connection the server has closed meanwhile is noticed *before* a request is written on it (the
socket reads as ready), so a request is never sent twice by this layer; after a request was written,
any failure is the caller's (the outbox retries with the same idempotency key). Timeouts come from
the request's ``timeout`` extension as httpx sets them (connect, then read/write). Errors are httpx's
exception types. No proxies, HTTP/1.1 only, the response read whole (the adapters read it whole).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from typing import Any

import httpx

_Origin = tuple[str, str, int]


class KeptAliveTransport(httpx.BaseTransport):
    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        self._ssl_context = verify if isinstance(verify, ssl.SSLContext) else None
        self._verify = verify
        self._local = threading.local()

    # --- connections ------------------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:  # loading the trust store is slow: once per transport
            self._ssl_context = httpx.create_ssl_context(verify=bool(self._verify))
        return self._ssl_context

    def _connections(self) -> dict[_Origin, http.client.HTTPConnection]:
        found = getattr(self._local, "connections", None)
        if found is None:
            found = self._local.connections = {}
        return found

    def _connection(self, origin: _Origin, connect_timeout: float | None) -> http.client.HTTPConnection:
        connections = self._connections()
        kept = connections.get(origin)
        if kept is not None:
            if kept.sock is not None and not _dropped(kept.sock):
                return kept
            kept.close()  # closed by the server while idle (or never opened): a fresh one
        scheme, host, port = origin
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=connect_timeout, context=self._context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect_timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out connecting") from exc
        except OSError as exc:
            conn.close()
            raise httpx.ConnectError(str(exc)) from exc
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections[origin] = conn
        return conn

    def _forget(self, origin: _Origin) -> None:
        conn = self._connections().pop(origin, None)
        if conn is not None:
            conn.close()

    # --- httpx.BaseTransport ----------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        port = url.port or (443 if scheme == "https" else 80)
        origin = (scheme, url.host, port)
        timeouts = request.extensions.get("timeout") or {}
        conn = self._connection(origin, timeouts.get("connect"))
        body = request.read()
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        target = url.raw_path.decode("ascii")
        conn.sock.settimeout(timeouts.get("write"))
        try:
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body or None)
        except TimeoutError as exc:
            self._forget(origin)
            raise httpx.WriteTimeout(str(exc) or "timed out writing") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._forget(origin)
            raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from exc
        conn.sock.settimeout(timeouts.get("read"))
        try:
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            self._forget(origin)
            raise httpx.ReadTimeout(str(exc) or "timed out reading") from exc
        except (http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError) as exc:
            self._forget(origin)
            raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._forget(origin)
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
        if answer.will_close:
            self._forget(origin)
        return httpx.Response(answer.status, headers=answer.getheaders(), content=content,
                              extensions={"http_version": b"HTTP/1.1",
                                          "reason_phrase": (answer.reason or "").encode("latin-1")},
                              request=request)

    def close(self) -> None:
        for conn in self._connections().values():
            conn.close()
        self._connections().clear()


def _dropped(sock: Any) -> bool:
    """A kept-alive socket that reads as ready has been closed by the server (or sent something
    unasked): either way it cannot carry the next request."""
    try:
        poller = select.poll()  # not select(): a Daphne holding thousands of sockets has descriptors past 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
