"""The HTTP side under ASGI (portal/asgi_handler.py): a sync middleware chain run once per request on
a fixed pool of threads, instead of Django's async chain that hopped between threads at every layer
and started a thread per request."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading

import pytest
from django.core import signals

from portal.asgi_handler import PooledSyncASGIHandler


def get(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    async def run() -> tuple[int, dict[bytes, bytes], bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        }
        sent: list[dict] = []
        inbox: asyncio.Queue = asyncio.Queue()
        await inbox.put({"type": "http.request", "body": b"", "more_body": False})

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, inbox.get, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), body

    return asyncio.run(run())


@pytest.fixture
def handler() -> PooledSyncASGIHandler:
    app = PooledSyncASGIHandler(threads=2)
    yield app
    app.executor.shutdown(wait=True)


def test_the_middleware_chain_is_built_sync(handler):
    # An async chain is what made every layer cross the sync/async boundary.
    assert not inspect.iscoroutinefunction(handler._middleware_chain)
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)


def test_a_request_runs_on_one_pooled_thread_from_start_to_finish(handler):
    threads: dict[str, list[str]] = {"started": [], "finished": []}

    def started(**kwargs) -> None:
        threads["started"].append(threading.current_thread().name)

    def finished(**kwargs) -> None:
        threads["finished"].append(threading.current_thread().name)

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        for _ in range(6):
            status, headers, body = get(handler, "/healthz")
            assert status == 200
            assert json.loads(body) == {"status": "ok"}
            assert headers.get(b"X-Request-ID")  # the middleware chain ran
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    # request_started and request_finished (which gives the database connection back) on the same thread,
    # and that thread is one of the pool's two: no thread started per request.
    assert threads["started"] == threads["finished"]
    assert all(name.startswith("django-request") for name in threads["started"])
    assert len(set(threads["started"])) <= 2


def test_the_application_serves_http_through_the_pooled_handler():
    from portal.asgi import django_asgi_app

    assert isinstance(django_asgi_app, PooledSyncASGIHandler)


def test_async_to_sync_in_a_request_runs_on_the_servers_event_loop(handler):
    """A live publish (async_to_sync(channel_layer.group_send)) must reach the server's loop, where the
    in-memory channel layer's consumers wait, not a loop of its own in a new thread."""
    from asgiref.sync import async_to_sync

    ran_on: list[str] = []

    async def where() -> None:
        ran_on.append(threading.current_thread().name)

    def started(**kwargs) -> None:
        async_to_sync(where)()

    signals.request_started.connect(started)
    try:
        status, _headers, _body = get(handler, "/healthz")
    finally:
        signals.request_started.disconnect(started)
    assert status == 200
    assert ran_on == [threading.main_thread().name]  # asyncio.run() in get() runs the loop here
