"""The worker's CPU per card, by stage (issue #19): N approval events handled end to end in this process.

    .venv/bin/python bench/worker_profile.py [--events 200] [--approvers 2] [--profile] [--top 30]

What a Celery worker does with stored events, run here without the broker: ``erp.handling`` claims a batch
of ``received`` events and runs the approval handler (mirror, assignments, outbox rows), then the same
process sends the batch's cards (``im.services.send_now``, as ``collect_outbox`` does in a worker) through
the generic webhook adapter to the benchmark's local sink (bench/sink.py, its own process), and records the
outcomes, message references and audit entries. The events are inserted as the intake stores them; the
intake's own request is not measured here (it is Daphne's CPU, not the worker's).

The database is DATABASE_URL when set (a PostgreSQL database this run migrates and fills: use a
database of your own), else a temporary SQLite file. CPU is this process's (``time.process_time``): the
database server's and the sink's CPU are not in it. The database is emptied first (``flush``). Stages
are timed by wrapping the functions that do them; ``--profile`` adds a cProfile of the whole run (its
overhead inflates the times it prints).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import multiprocessing
import os
import pstats
import socket
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOK_SECRET = "whsec_" + "YmVuY2gtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMhIQ=="  # the sink does not check it

# (stage, module, attribute): the wrapped functions; a stage's time excludes the stages nested in it.
STAGES: list[tuple[str, str, str]] = [
    ("handle events (mirror, assignments, history)", "erp.handling", "_handle_one"),
    ("handle events (mirror, assignments, history)", "erp.handling", "_handle_together"),
    ("outbox write", "im.services", "write_outbox"),
    ("outbox write", "approvals.services", "write_outbox"),
    ("claim", "im.services", "_claim"),
    ("build cards (incl. authorize)", "im.services", "build_card"),
    ("build cards (incl. authorize)", "im.services", "build_cards"),
    ("address", "im.platforms.webhook.adapter", "WebhookAdapter.address_of"),
    ("address", "im.services", "addresses_of"),
    ("rate limit", "im.ratelimit", "acquire"),
    ("send (JSON, signature, HTTP)", "im.platforms.webhook.adapter", "WebhookAdapter.send_card"),
    ("record (outcomes, refs, audit)", "im.services", "_record"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Clock:
    """CPU seconds per stage, exclusive of nested stages."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []  # [stage, started, nested time]

    def wrap(self, stage: str, func: Callable) -> Callable:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [stage, time.process_time(), 0.0]
            self._stack.append(frame)
            try:
                return func(*args, **kwargs)
            finally:
                self._stack.pop()
                total = time.process_time() - frame[1]
                self.spent[stage] += total - frame[2]
                self.calls[stage] += 1
                if self._stack:
                    self._stack[-1][2] += total

        return timed


def install(clock: Clock) -> None:
    import importlib

    for stage, module_name, attribute in STAGES:
        module = importlib.import_module(module_name)
        owner: Any = module
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            setattr(owner, name, clock.wrap(stage, getattr(owner, name)))


@contextlib.contextmanager
def sink_process() -> Iterator[str]:
    from bench import sink

    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=sink.serve, args=(port,), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/arrivals?since=0", timeout=1).read()  # noqa: S310 - loopback
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.join(5)


def arrivals(url: str) -> int:
    import json

    return len(json.loads(urllib.request.urlopen(f"{url}/arrivals?since=0", timeout=5).read()))  # noqa: S310


def setup(database_url: str | None, sink_url: str, tmp: Path) -> None:
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings_test", "DEV_INBOX_ENABLED": "0",
        "IM_ADAPTERS": "webhook", "IM_WEBHOOK_URL": f"{sink_url}/im", "IM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CELERY_TASK_ALWAYS_EAGER": "1", "REDIS_URL": os.environ.get("PROFILE_REDIS_URL", ""),
        "LOG_LEVEL": os.environ.get("PROFILE_LOG_LEVEL", "WARNING"), "DEBUG": "0",
        # A production worker has Redis, and with it the permission snapshot (off without Redis by default).
        "PERMISSION_CACHE_SECONDS": os.environ.get("PERMISSION_CACHE_SECONDS", "5"),
        "PORTAL_VAR_DIR": str(tmp / "var"), "STATIC_ROOT": str(tmp / "static"),
        "DATABASE_URL": database_url or f"sqlite:///{tmp / 'profile.sqlite3'}",
    })
    import django

    django.setup()
    from django.core.management import call_command

    from portal.demo import setup_demo

    call_command("migrate", verbosity=0)
    call_command("flush", verbosity=0, interactive=False)  # a database of this run's own: start empty
    setup_demo()


def approver_logins(count: int) -> list[str]:
    """The demo's two approvers, then copies of li.si (same roles and department) up to ``count``."""
    from django.contrib.auth import get_user_model

    from sso.models import ErpIdentity

    logins = ["li.si", "wang.wu"][:count]
    template = ErpIdentity.objects.get(erp_login="li.si")
    groups = list(template.user.groups.all())
    for _ in range(count - len(logins)):
        login = f"li.si.{uuid.uuid4().hex[:6]}"
        user = get_user_model().objects.create(username=login, email=f"{login}@example.com")
        user.groups.set(groups)
        ErpIdentity.objects.create(connector=template.connector, erp_login=login, user=user, roles=template.roles,
                                   department=template.department, employee=login)
        logins.append(login)
    return logins


def store_events(count: int, logins: list[str]) -> None:
    """``count`` approval events stored as the intake stores them (state ``received``)."""
    from erp.models import Connector, InboundEvent

    connector = Connector.objects.get(slug="demo")
    run = uuid.uuid4().hex[:6]
    InboundEvent.objects.bulk_create(
        InboundEvent(connector=connector, webhook_id=f"msg_{run}_{i}", event_id=f"ev-{run}-{i}",
                     type="erp.approval.requested", source="urn:erp:bench", status=InboundEvent.Status.RECEIVED,
                     data={"document": {"id": f"PR-BW-{run}-{i:06d}", "kind": "purchase_requisition",
                                        "title": "紧急采购: 伺服电机", "amount": "12800.00", "currency": "CNY",
                                        "requester": "zhang.san", "project": "项目A",
                                        "lines": [{"sku": "SKU-123", "name": "伺服电机", "qty": "4",
                                                   "unit_price": "3200.00"}]},
                           "approvers": logins})
        for i in range(count))


def work(batch_size: int | None = None) -> int:
    """What a worker does with the stored events: handle them in batches, sending each batch's cards.
    ``batch_size`` caps a batch (a quiet system claims one or two events per task)."""
    from erp.handling import BATCH_SIZE, handle_received

    handled = 0
    while True:
        batch = handle_received(limit=batch_size or BATCH_SIZE)
        if not batch:
            return handled
        handled += batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--approvers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=20, help="events handled first, not measured")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the measured run")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--batch", type=int, default=None,
                        help="events per batch (default erp.handling.BATCH_SIZE; 1 = a quiet system's batches)")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave out the gc.freeze() a worker's pool process does at start")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sink_process() as sink_url:
        setup(os.environ.get("DATABASE_URL"), sink_url, Path(tmp))
        from django.db import connection

        from im import services

        services._in_worker = lambda: True  # the batch's cards are sent by this process, as in a worker
        logins = approver_logins(args.approvers)
        store_events(args.warmup, logins)
        work()  # warm-up: imports, translations, the HTTP connection
        if not args.no_freeze:
            from portal.celery import freeze_start_up_objects

            freeze_start_up_objects()  # as a pool process does when it starts (worker_process_init)
        before = arrivals(sink_url)

        clock = Clock()
        install(clock)
        store_events(args.events, logins)
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall (database waits)
        backend = database_backend(connection)
        backend_before = cpu_seconds(backend)
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        queries = [0]

        by_statement: dict[str, list[float]] = defaultdict(list)

        def count(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
            queries[0] += 1
            if os.environ.get("SHOW_SQL"):
                print("SQL", sql[:230])
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                by_statement[sql[:150]].append(time.perf_counter() - started)

        if profiler:
            profiler.enable()
        with connection.execute_wrapper(count):
            handled = work(args.batch)
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
        backend_cpu = cpu_seconds(backend) - backend_before if backend else None
        cards = arrivals(sink_url) - before

        from im.models import Delivery

        unsent = Delivery.objects.exclude(status=Delivery.Status.SENT).count()
        print(f"\n{handled} events × {len(logins)} approvers → {cards} cards at the sink "
              f"({unsent} outbox rows not sent); database {connection.vendor}"
              f"{' (cProfile on: times inflated)' if profiler else ''}\n")
        print("| stage | ms CPU per card | share | calls |\n| --- | ---: | ---: | ---: |")
        per_card = 1000 / max(cards, 1)
        accounted = 0.0
        for stage in dict.fromkeys(stage for stage, _, _ in STAGES):
            spent = clock.spent.get(stage, 0.0)
            accounted += spent
            print(f"| {stage} | {spent * per_card:.2f} | {spent / cpu:.0%} | {clock.calls.get(stage, 0)} |")
        print(f"| other (batching, transactions, signals, …) | {(cpu - accounted) * per_card:.2f} "
              f"| {(cpu - accounted) / cpu:.0%} | |")
        print(f"| **total** | **{cpu * per_card:.2f}** | 100% | |")
        print(f"\nwall {wall:.2f} s, {cards / wall:.0f} cards/s in one process; CPU {cpu:.2f} s; "
              f"{queries[0] / max(cards, 1):.1f} queries per card")
        if os.environ.get("SQL_TIMES"):  # each statement's wall time in this process (the server's work in it)
            for sql, times in sorted(by_statement.items(), key=lambda item: -sum(item[1]))[:25]:
                print(f"{sum(times) * per_card * 1000:7.3f} ms/card {len(times):5d}× {sql}")
        if backend_cpu is not None:
            print(f"PostgreSQL: its backend for this process used {backend_cpu * per_card:.2f} ms CPU per card "
                  "(not in the table above)")
        if profiler:
            print()
            print_profile(profiler, args.top)


def database_backend(connection: Any) -> int | None:
    """The pid of this process's PostgreSQL backend when the server runs on this machine, else None."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return pid if cpu_seconds(pid) is not None else None


def cpu_seconds(pid: int | None) -> float | None:
    import psutil

    try:
        return sum(psutil.Process(pid).cpu_times()[:2]) if pid else None
    except psutil.Error:
        return None


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    """The ``top`` functions by cumulative and by own CPU time; the stats also go to PROFILE_OUT when set."""
    if os.environ.get("PROFILE_OUT"):
        profiler.dump_stats(os.environ["PROFILE_OUT"])
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
