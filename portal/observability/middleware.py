"""Where request ids enter: HTTP requests (Django middleware) and websocket connections (ASGI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from portal.observability import context, metrics

HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Honours a sane incoming X-Request-ID (the proxy's), else makes one; every log line of the
    request, and every task it queues, carries it; the response echoes it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = context.sane_request_id(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        with context.scope(request_id=request_id, event_id=""):
            response = self.get_response(request)
        response[HEADER] = request_id
        return response


class WebsocketObservability:
    """ASGI middleware for websocket connections: a request id for the connection's log lines
    (each connection is one asyncio task, so the contextvars stay with it) and the open-connection
    gauge, counted from the accept to the end of the connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        headers = dict(scope.get("headers") or [])
        request_id = context.sane_request_id(headers.get(HEADER.lower().encode()))
        accepted = False

        async def counting_send(message: dict) -> None:
            nonlocal accepted
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                metrics.WEBSOCKETS.inc()
            await send(message)

        with context.scope(request_id=request_id, event_id=""):
            try:
                return await self.app(scope, receive, counting_send)
            finally:
                if accepted:
                    metrics.WEBSOCKETS.dec()
