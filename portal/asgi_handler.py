"""Django's HTTP side under ASGI with one thread hop per request instead of a dozen.

Django's own ``ASGIHandler`` builds the middleware chain in async mode. Our chain mixes sync-only
middleware (ours, django-prometheus) with async-capable ones (Django's ``MiddlewareMixin``, axes,
allauth), so a request crossed the sync↔async boundary at almost every layer (``SyncToAsync`` /
``AsyncToSync`` pairs), and each request opened a ``ThreadSensitiveContext``, i.e. started and joined
a new thread. py-spy on a loaded Daphne found most busy samples there (``Thread.start``,
``ThreadSensitiveContext.__aexit__``, ``CurrentThreadExecutor``), not in the view: ``/healthz`` answered
about 230 requests/s against 2,100 for a bare ASGI app under the same Daphne.

Here the chain is built once in sync mode, and everything sync about a request (``request_started``,
the middleware, the view, ``response.close()`` and so ``request_finished``) runs in one call on a
thread of a fixed pool that lives as long as the process. The request's database connection is
opened and given back on that same thread, as under WSGI. Only the body read and the response
write stay on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Threads serving requests per process. Each holds a database connection only while it runs a
# request, so more threads than the connection pool (DB_POOL_MAX_SIZE) only queue for a connection.
REQUEST_THREADS = int(os.environ.get("ASGI_REQUEST_THREADS", "16"))


class PooledSyncASGIHandler(ASGIHandler):
    """``ASGIHandler`` with a sync middleware chain run on a fixed thread pool (see the module)."""

    def __init__(self, threads: int = REQUEST_THREADS) -> None:
        BaseHandler.__init__(self)  # not ASGIHandler.__init__: it builds the chain in async mode
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="django-request")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self.executor, self._respond, loop, scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    # Its iterator ran on the event loop's side; close (request_finished) after the last
                    # chunk, or when the client went away in the middle.
                    await loop.run_in_executor(self.executor, response.close)
        finally:
            body_file.close()

    def _respond(self, loop: asyncio.AbstractEventLoop, scope: dict, body_file: Any) -> HttpResponseBase:
        # What SyncToAsync tells its threads: an async_to_sync() in a view (a live publish to the channel
        # layer) then runs on the server's event loop, as under Django's handler, instead of starting a
        # thread and a loop of its own (which an in-memory channel layer's queues would not notice).
        SyncToAsync.threadlocal.main_event_loop = loop
        SyncToAsync.threadlocal.main_event_loop_pid = os.getpid()
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            # The body is in memory: finish the request here, on the thread that holds its
            # database connection, so request_finished gives that connection back.
            response.close()
        return response
