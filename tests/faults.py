"""Helpers for the fault tests (tests/test_faults.py): everything on loopback, all started and
stopped by the tests themselves.

- :class:`Sink` — a threaded HTTP server playing the IM platform behind the generic ``webhook``
  adapter. It records every arrival and answers per the phase the test sets: ``ok`` (200), ``429``
  (with ``Retry-After``), ``500``, ``hang`` (no answer until well after the client's timeout, then
  the connection is closed), ``hold`` (one request held until the test releases it; the kill test
  SIGKILLs the worker while it waits). It can also run a hook just before it acknowledges a send
  (the Postgres test cuts the database there).
- :class:`RedisServer` — a private ``redis-server`` on a free port, without persistence, that can be
  killed and started again on the same port. The machine's Redis is never touched.
- :class:`TcpProxy` — a byte pump between the worker and Postgres; ``cut()`` drops every open
  connection and refuses new ones (the port is closed), ``restore()`` listens again.
- :class:`SafetyNet` — calls the beat's ``portal.tasks.requeue_stale_work`` every ``interval``
  seconds from the test process, as Celery beat does every 60 s in production.
- :class:`Ledger` — the counts the issue asks for (see tests/test_faults.py for the definitions).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.live_server import free_port

# --- the IM sink ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One request the sink received."""

    type: str  # card.send, card.update, …
    key: str  # the sender's idempotency key (``data.idempotency_key``; else the webhook-id)
    webhook_id: str
    address: str
    at: float  # time.monotonic()
    answer: int | None  # the status the sink answered; None: it answered nothing (hang, hold)
    acked_before: bool  # the sink had already answered 2xx to this key when it arrived


class Sink:
    """The IM platform on loopback. ``phase`` is read per request, so the test switches it live."""

    PHASES = ("ok", "429", "500", "hang", "hold")

    def __init__(self, secret: str, *, retry_after: float = 1.0, hang_seconds: float = 2.0) -> None:
        self.secret = secret
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.phase = "ok"
        self._lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self.acked: dict[str, float] = {}  # card.send key -> when the sink first answered it with 2xx
        self.bad_signatures = 0
        self._hold_next = False
        self.held = threading.Event()  # set while a request is held
        self._release = threading.Event()
        self._before_ack: Callable[[str], None] | None = None
        self._stopping = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                sink._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/im"
        self._thread = threading.Thread(target=self.server.serve_forever, name="im-sink", daemon=True)

    # --- control ---
    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.arrivals.clear()
            self.acked.clear()
            self.bad_signatures = 0
            self.phase = "ok"
            self._hold_next = False
            self._before_ack = None
        self.held.clear()
        self._release.clear()

    def hold_next_send(self) -> None:
        """The next ``card.send`` waits (unanswered) until :meth:`release`."""
        with self._lock:
            self._hold_next = True
        self.held.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def before_next_ack(self, hook: Callable[[str], None]) -> None:
        """Run ``hook(key)`` once, right before the sink answers the next ``card.send`` with 200."""
        with self._lock:
            self._before_ack = hook

    # --- reading ---
    def sends(self) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.type == "card.send"]

    def acked_keys(self) -> set[str]:
        with self._lock:
            return set(self.acked)

    # --- the platform ---
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.bad_signatures += 1
            self._answer(request, 401, {})
            return
        payload = json.loads(body)
        data = payload.get("data") or {}
        event_type = str(payload.get("type", ""))
        webhook_id = headers.get("webhook-id", "")
        key = str(data.get("idempotency_key") or webhook_id)
        is_send = event_type == "card.send"
        with self._lock:
            phase = self.phase
            hold = is_send and self._hold_next
            if hold:
                self._hold_next = False
            hook = self._before_ack if is_send and phase == "ok" and not hold else None
            if hook is not None:
                self._before_ack = None
            acked_before = key in self.acked

        answer: int | None
        if hold:
            self.held.set()
            self._release.wait(30)
            answer = None  # the sender is dead by now: close without an answer
        elif phase == "hang":
            self._stopping.wait(self.hang_seconds)  # longer than IM_WEBHOOK_TIMEOUT
            answer = None
        elif phase == "429":
            answer = 429
        elif phase == "500":
            answer = 500
        else:
            if hook is not None:
                hook(key)
            answer = 200
        with self._lock:
            self.arrivals.append(Arrival(event_type, key, webhook_id, str(data.get("address", "")),
                                         time.monotonic(), answer, acked_before))
            if answer == 200 and is_send:
                # Acknowledged from here on: the same key again is a duplicate, not a redelivery.
                self.acked.setdefault(key, time.monotonic())
        if answer is None:
            request.close_connection = True
            return
        extra = {"retry-after": f"{self.retry_after:g}"} if answer == 429 else {}
        self._answer(request, answer, {"message_id": f"m-{webhook_id}"} if answer == 200 else {}, extra)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        raw = json.dumps(body).encode()
        request.send_response(status)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("content-type", "application/json")
        request.send_header("content-length", str(len(raw)))
        request.end_headers()
        with suppress(OSError):
            request.wfile.write(raw)


# --- a private Redis ------------------------------------------------------------------------------


class RedisServer:
    """``redis-server`` on a port of its own, no RDB, no AOF: a restart loses everything in it, as a
    broker restart without persistence does."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 10.0) -> None:
        import redis

        self.starts += 1
        log = (self.log_dir / f"redis-{self.port}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.log_dir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server on port {self.port} did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no save, no goodbye to the clients."""
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


# --- a cuttable TCP proxy -------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` (a (host, port) pair or a Unix socket path)."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.cuts = 0
        self.connections = 0

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # the port was ours a moment ago; a socket in TIME_WAIT may linger
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"the proxy could not listen on port {self.port} again")
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="pg-proxy-accept", daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
        else:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        return upstream

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut() or stop()
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), name="pg-proxy-pump", daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1.0):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        data = sock.recv(65536)
                        if not data:
                            return
                        peer[sock].sendall(data)
                    if self._stop.is_set():
                        return
            except (OSError, ValueError):
                return  # cut() closed the sockets under us
            finally:
                self._close_pair(client, upstream)

    def _close_pair(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock, suppress(ValueError):
            self._pairs.remove((client, upstream))
        for sock in (client, upstream):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (nothing listens on the port)."""
        self.cuts += 1
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for client, upstream in pairs:
            self._close_pair(client, upstream)

    def restore(self) -> None:
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stop.set()
        self.cut()


# --- the beat's safety net ------------------------------------------------------------------------


class SafetyNet:
    """``portal.tasks.requeue_stale_work`` every ``interval`` seconds, in a thread of the test process
    (production: Celery beat every 60 s). Errors (the broker is down) are counted, not raised: the
    next tick tries again, as beat would."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.ticks = 0
        self.errors = 0
        self.requeued: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="safety-net", daemon=True)

    def start(self) -> SafetyNet:
        self._thread.start()
        return self

    def _run(self) -> None:
        from django.db import connection

        from portal.tasks import requeue_stale_work

        try:
            while not self._stop.wait(self.interval):
                try:
                    for kind, count in requeue_stale_work().items():
                        self.requeued[kind] += count
                    self.ticks += 1
                except Exception:  # noqa: BLE001 - a broker or database outage: try again next tick
                    self.errors += 1
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- counting -------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What was accepted, what the sink saw, what the ERP holds; see tests/test_faults.py."""

    fault: str
    started: float = field(default_factory=time.monotonic)
    expected: set[str] = field(default_factory=set)  # delivery keys of every event answered 202
    events_accepted: int = 0
    intake_refusals: int = 0  # non-202 answers (the ERP's retries then got the 202)
    decisions: dict[str, str] = field(default_factory=dict)  # document number -> idempotency key
    decide_errors: int = 0
    errors: set[str] = field(default_factory=set)  # what the retried intake calls and decide() calls met
    load_seconds: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)

    def tally(self, sink: Sink) -> dict[str, Any]:
        from approvals.models import Decision
        from erp.connectors.demo.models import AppliedDecision
        from im.models import Delivery

        sends = sink.sends()
        acked = sink.acked_keys()
        arrivals_per_key: dict[str, int] = defaultdict(int)
        for arrival in sends:
            arrivals_per_key[arrival.key] += 1
        duplicated = {a.key for a in sends if a.acked_before}
        redelivered = {k for k, n in arrivals_per_key.items() if n > 1} - duplicated
        rows = Delivery.objects.filter(dedupe_key__in=self.expected)
        applied: dict[str, int] = defaultdict(int)
        for number in AppliedDecision.objects.filter(document_number__in=self.decisions).values_list(
            "document_number", flat=True
        ):
            applied[number] += 1
        written = Decision.objects.filter(
            document__external_id__in=self.decisions, writeback_status=Decision.Writeback.DONE
        ).count()
        self.counts = {
            "fault": self.fault,
            "events 202": self.events_accepted,
            "expected": len(self.expected),
            "sent": rows.filter(status=Delivery.Status.SENT).count(),
            "delivered": len(acked & self.expected),
            "duplicated": len(duplicated),
            "lost": len(self.expected - acked),
            "unexpected": len(acked - self.expected),
            "redelivered": len(redelivered),
            "arrivals": len(sends),
            "decisions": len(self.decisions),
            "written back": written,
            "erp applied": sum(1 for n in self.decisions if applied[n] >= 1),
            "wb duplicated": sum(max(0, applied[n] - 1) for n in self.decisions),
            "wb lost": sum(1 for n in self.decisions if applied[n] == 0),
            "seconds": round(time.monotonic() - self.started, 1),
        }
        return self.counts


def table(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    if not rows:
        return ""
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    line = " | ".join(c.ljust(widths[c]) for c in columns)
    rule = "-+-".join("-" * widths[c] for c in columns)
    body = [" | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join([line, rule, *body])
