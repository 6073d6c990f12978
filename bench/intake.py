"""The intake alone, on one Daphne process (issue #19): answers/s, answer p50/p99, CPU per request.

    .venv/bin/python bench/intake.py [--rate 200] [--seconds 10] [--connections 16]

DATABASE_URL must be PostgreSQL (the run creates and drops its own `bench_intake_<pid>` database on
that server); REDIS_URL is the broker the intake tells the workers through (its keys carry a prefix of
their own and are removed afterwards). No worker runs: only the intake's own cost is measured (store,
de-duplicate, answer, tell the workers). Three runs, each printed as one row:

1. open loop at ``--rate`` events/s for ``--seconds`` (answer latency at a fixed arrival rate);
2. closed loop on ``--connections`` clients (events/s at saturation, and Daphne CPU per event);
3. ``GET /healthz`` closed loop (the request floor), beside a bare ASGI app under the same Daphne.

CPU per request is the Daphne process's user + system CPU over the run divided by the answers.
Every accepted event is then counted in the database: stored must equal accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    Events,
    Memory,
    Run,
    closed_loop,
    forget_redis_keys,
    free_port,
    log,
    open_loop,
    percentile,
    portal_env,
    setup_portal,
    with_database,
)
from portal import serve  # noqa: E402

BARE_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''


def admin_run(url: str, sql: str) -> None:
    import psycopg

    admin = with_database(url, "postgres").replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


async def get_loop(url: str, connections: int, seconds: float) -> tuple[int, list[float], int]:
    """``connections`` clients GETting ``url`` back to back: (answers, latencies in ms, errors)."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        end = time.monotonic() + seconds

        async def client() -> None:
            nonlocal errors
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                            continue
                except Exception:
                    errors += 1
                    continue
                latencies.append((time.monotonic() - started) * 1000)

        await asyncio.gather(*(client() for _ in range(connections)))
    return len(latencies), latencies, errors


def ms(samples: list[float]) -> str:
    if not samples:
        return "—"
    return f"{statistics.median(samples):.1f} / {percentile(samples, 99):.1f} ms"


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    header = ("area", "measure", "value", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip())


def cpu_of(memory: Memory, name: str) -> float:
    return memory.cpu().get(name, 0.0)


def bare_floor(connections: int, seconds: float, tmp: Path) -> tuple[float, float]:
    """A bare ASGI app under the same Daphne: (requests/s, CPU ms per request)."""
    import psutil

    (tmp / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    # The same Daphne as the portal's (portal.daphne_main: no per-request access log lines either).
    process = subprocess.Popen([sys.executable, "-m", "portal.daphne_main", "-p", str(port), "bare_app:app"],  # noqa: S603
                               cwd=tmp, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with suppress(Exception):
                if asyncio.run(get_loop(url, 1, 0.05))[0]:
                    break
            time.sleep(0.2)
        asyncio.run(get_loop(url, connections, 1))
        before = sum(psutil.Process(process.pid).cpu_times()[:2])
        answers, _, _ = asyncio.run(get_loop(url, connections, seconds))
        used = sum(psutil.Process(process.pid).cpu_times()[:2]) - before
        return answers / seconds, used * 1000 / max(answers, 1)
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench/intake.py measures the production shape: DATABASE_URL must be PostgreSQL")
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    name = f"bench_intake_{os.getpid()}"
    tag = f"bench-intake-{uuid.uuid4().hex[:8]}"
    admin_run(url, f'CREATE DATABASE "{name}"')
    database_url = with_database(url, name)
    rows: list[tuple[str, ...]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp_name:
            tmp = Path(tmp_name)
            rows = measure_all(args, tmp, database_url, redis_url, tag)
    finally:
        forget_redis_keys(redis_url, tag)
        with suppress(Exception):
            admin_run(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print()
    print_table(f"bench/intake.py — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, one Daphne, "
                f"no worker, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", rows)


def measure_all(args, tmp: Path, database_url: str, redis_url: str, tag: str) -> list[tuple[str, ...]]:
    log("setting up the database (migrate, demo world)")
    setup = setup_portal(database_url, redis_url, tag, tmp)
    env = portal_env(database_url, redis_url, tag, tmp, setup["secret_key"], "http://127.0.0.1:9")
    (tmp / "logs").mkdir()
    handle = serve.start(1, 0, env=env, beat=False, log_dir=tmp / "logs")
    intake = f"{handle.url}/api/erp/demo/events"
    memory = Memory()
    rows: list[tuple[str, ...]] = []
    accepted = 0
    try:
        handle.wait_ready(timeout=90)
        memory.add("daphne", handle.children[0].pid)
        asyncio.run(closed_loop(intake, Events(setup["webhook_secret"], "W"), 8, 3))  # imports, pools

        before = cpu_of(memory, "daphne")
        steady: Run = asyncio.run(open_loop(intake, Events(setup["webhook_secret"], "O"), args.rate, args.seconds))
        used = cpu_of(memory, "daphne") - before
        answers = list(steady.answered.values())
        accepted += len(answers)
        rows.append(("intake", f"open loop {args.rate:.0f} events/s, {args.seconds:.0f} s: answer p50 / p99",
                     ms([a * 1000 for a in answers]),
                     f"{len(answers)} answered 202, {len(steady.errors)} errors; "
                     f"Daphne CPU {used * 1000 / max(len(answers), 1):.2f} ms/event"))

        before = cpu_of(memory, "daphne")
        saturated = asyncio.run(closed_loop(intake, Events(setup["webhook_secret"], "S"), args.connections,
                                            args.seconds))
        used = cpu_of(memory, "daphne") - before
        answers = list(saturated.answered.values())
        accepted += len(answers)
        elapsed = saturated.load_ended - saturated.started
        rows.append(("intake", f"closed loop, {args.connections} connections: events/s",
                     f"{len(answers) / elapsed:.0f}",
                     f"answer p50 / p99 {ms([a * 1000 for a in answers])}, {len(saturated.errors)} errors; "
                     f"Daphne CPU {used * 1000 / max(len(answers), 1):.2f} ms/event"))

        before = cpu_of(memory, "daphne")
        count, latencies, errors = asyncio.run(get_loop(f"{handle.url}/healthz", args.connections, args.seconds))
        used = cpu_of(memory, "daphne") - before
        rows.append(("floor", f"/healthz closed loop, {args.connections} connections: requests/s",
                     f"{count / args.seconds:.0f}",
                     f"p50 / p99 {ms(latencies)}, {errors} errors; CPU {used * 1000 / max(count, 1):.2f} ms/request"))
    finally:
        handle.stop()
    bare_rate, bare_cpu = bare_floor(args.connections, args.seconds, tmp)
    rows.append(("floor", "bare ASGI app under Daphne: requests/s", f"{bare_rate:.0f}",
                 f"CPU {bare_cpu:.2f} ms/request"))
    from erp.models import InboundEvent

    stored = InboundEvent.objects.filter(event_id__isnull=False).exclude(data__document__id__startswith="PR-BW") \
        .filter(data__document__id__startswith="PR-B").count()
    rows.append(("intake", "events stored / answered 202 (must be equal)", f"{stored} / {accepted}",
                 "ok" if stored == accepted else "MISMATCH"))
    return rows


if __name__ == "__main__":
    main()
