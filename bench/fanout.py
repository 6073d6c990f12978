"""Websocket fan-out and widget page benchmark: two Daphne processes on the Redis channel layer.

    REDIS_URL=redis://127.0.0.1:6379/0 [DATABASE_URL=postgres://…] .venv/bin/python bench/fanout.py [--sockets 2000]
        [--rounds 5] [--pages 200] [--profile DIR]

N sockets (half on each Daphne) subscribe to one live topic (the stock widget of SKU-123, with its
embed token). The ERP then reports stock changes through the signed intake of the first Daphne;
every socket's push latency is measured from the moment the intake answered 202. Then the widget
page is fetched repeatedly (server time and bytes), and its body refetched as live.js does when
nothing changed (If-None-Match: 304). Prints one table; targets beside the results.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import percentile  # noqa: E402
from portal import serve  # noqa: E402


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(port: int, env: dict[str, str], log: Path, profile: Path | None = None) -> subprocess.Popen:
    # --profile: each Daphne under cProfile, its stats written when it stops (py-spy is not installed here).
    profiled = ["-m", "cProfile", "-o", str(profile / f"daphne-{port}.prof")] if profile else []
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *profiled, "-m", "portal.daphne_main", "-b", "127.0.0.1", "-p", str(port),
         "portal.asgi:application"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )


def wait_healthy(port: int, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"Daphne on {port} did not start")


async def open_sockets(ports: list[int], token: str, count: int, topic: str):
    import websockets

    sockets = []
    for i in range(count):
        port = ports[i % len(ports)]
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/live/?e={token}", origin=f"http://127.0.0.1:{port}",
                                      max_queue=None, open_timeout=30)
        await ws.send(json.dumps({"subscribe": topic}))
        sockets.append(ws)
    for ws in sockets:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert answer == {"subscribed": topic}, answer
    return sockets


async def measure_push(sockets, post) -> list[float]:
    async def first_push(ws) -> float:
        while True:
            message = json.loads(await ws.recv())
            if "version" in message:
                return time.perf_counter()

    waiters = [asyncio.ensure_future(first_push(ws)) for ws in sockets]
    await asyncio.sleep(0.05)
    sent_at = await asyncio.get_running_loop().run_in_executor(None, post)
    received = await asyncio.wait_for(asyncio.gather(*waiters), 60)
    return [(t - sent_at) * 1000 for t in received]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py's table)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each Daphne into this folder")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("REDIS_URL is needed: the two Daphne processes share the Redis channel layer")

    tmp = Path(tempfile.mkdtemp(prefix="fanout-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings_test"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The demo world's stock arrives through the intake: handled here, not stored for absent workers.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    import django

    django.setup()
    import httpx
    import psutil
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    from erp.connectors.demo import emitter
    from erp.connectors.demo.models import Stock
    from erp.models import Connector
    from portal.demo import setup_demo
    from widgets.embed import make_embed_token

    setup_demo()
    path = "/w/stock/SKU-123/"
    token = make_embed_token(get_user_model().objects.get(username="zhao.liu"), path)
    ports = [free_port(), free_port()]
    env = dict(os.environ, SECRET_KEY=settings.SECRET_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
               CELERY_TASK_ALWAYS_EAGER="1", LIVE_COALESCE_SECONDS=os.environ.get("LIVE_COALESCE_SECONDS", "0.05"),
               STATIC_ROOT=str(settings.STATIC_ROOT))
    # As portal.serve runs Daphne: with its pool of database connections (a page without one opened a
    # connection per request, about 8 of the 15 ms the widget page took here).
    env = serve.daphne_environment(env)
    servers = [start_daphne(port, env, tmp / f"daphne-{port}.log", args.profile) for port in ports]
    try:
        for port in ports:
            wait_healthy(port)
        processes = [psutil.Process(server.pid) for server in servers]
        rss_idle = [p.memory_info().rss / 2**20 for p in processes]
        secret = Connector.objects.get(slug="demo").webhook_secret
        stock = Stock.objects.select_related("item", "warehouse").get(item__sku="SKU-123", warehouse__code="SH")

        def post() -> float:
            stock.quantity += 1
            envelope = emitter.build_envelope(emitter.STOCK_CHANGED, emitter.stock_changed_data(stock), "SKU-123@SH")
            headers, body = emitter.signed_request(secret, envelope)
            response = httpx.post(f"http://127.0.0.1:{ports[0]}/api/erp/demo/events", content=body,
                                  headers=dict(headers), timeout=30)
            assert response.status_code == 202, response.text
            return time.perf_counter()

        async def run() -> tuple[list[float], float, list[float]]:
            started = time.perf_counter()
            sockets = await open_sockets(ports, token, args.sockets, "item.SKU-123")
            opened = time.perf_counter() - started
            rss_busy = [p.memory_info().rss / 2**20 for p in processes]
            latencies = []
            # The servers' CPU over the pushes: less at the mercy of other work on the machine than latency.
            cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
            for _ in range(args.rounds):
                latencies += await measure_push(sockets, post)
                await asyncio.sleep(0.5)
            push_cpu.append(sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before)
            for ws in sockets:
                await ws.close()
            return latencies, opened, rss_busy

        push_cpu: list[float] = []
        latencies, opened, rss_busy = asyncio.run(run())
        # Per socket per change: the intake's own request and the idle sleeps between rounds are included.
        cpu_per_push = push_cpu[0] / (args.rounds * args.sockets) * 1e6

        page_times, size = [], 0
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}", headers={"Accept-Encoding": "gzip"}) as client:
            for _ in range(args.pages):
                started = time.perf_counter()
                response = client.get(path, params={"e": token})
                page_times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            html_gz = len(gzip.compress(response.content))
            # A live refetch of what the page shows already: the ETag it has, answered 304.
            body = client.get(path + "body/", params={"e": token})
            refetch_times, refetch_codes = [], set()
            for _ in range(args.pages):
                started = time.perf_counter()
                again = client.get(path + "body/", params={"e": token},
                                   headers={"If-None-Match": body.headers.get("ETag", "")})
                refetch_times.append((time.perf_counter() - started) * 1000)
                refetch_codes.add(again.status_code)
            assets = 0
            for asset in ("/static/vendor/htmx.min.js", "/static/portal/live.js", "/static/portal/app.css"):
                got = client.get(asset)
                assets += int(got.headers.get("content-length") or len(gzip.compress(got.content)))
            size = html_gz + assets
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)

    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    rows = [
        ("fan-out: push to every socket", f"{len(latencies)} pushes", f"{statistics.median(latencies):.0f}",
         f"{percentile(latencies, 99):.0f}", "p99 < 250 ms",
         f"{args.sockets} sockets on 2 Daphne, {args.rounds} changes, opened in {opened:.1f} s"),
        ("fan-out: Daphne CPU per socket per change", f"{args.rounds} changes", f"{cpu_per_push:.0f} µs", "", "—",
         "both processes, user + system, over the push rounds (the intake request included)"),
        ("widget page GET (loopback)", f"{len(page_times)} GETs", f"{statistics.median(page_times):.1f}",
         f"{percentile(page_times, 99):.1f}", "p50 < 20 ms", f"{size} B over the wire, all included (gzip)"),
        ("widget refetch, unchanged (If-None-Match)", f"{len(refetch_times)} GETs",
         f"{statistics.median(refetch_times):.1f}", f"{percentile(refetch_times, 99):.1f}", "—",
         f"answered {', '.join(map(str, sorted(refetch_codes)))}"),
        ("Daphne resident memory", "2 processes", f"{sum(rss_idle) / 2:.0f} MiB idle",
         f"{max(rss_busy):.0f} MiB busy", "—", f"with {args.sockets // 2} sockets each"),
    ]
    header = ("step", "n", "p50 ms", "p99 ms", "target", "notes")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    if args.json:
        Path(args.json).write_text(json.dumps({
            "sockets": args.sockets, "rounds": args.rounds, "opened_s": opened,
            "push_p50": statistics.median(latencies), "push_p99": percentile(latencies, 99),
            "push_cpu_us": cpu_per_push,
            "page_p50": statistics.median(page_times), "page_p99": percentile(page_times, 99), "page_bytes": size,
            "refetch_p50": statistics.median(refetch_times), "refetch_p99": percentile(refetch_times, 99),
            "refetch_codes": sorted(refetch_codes),
            "rss_idle": rss_idle, "rss_busy": rss_busy,
        }))
    coalesce = env["LIVE_COALESCE_SECONDS"]
    print(f"\nfan-out benchmark: database {db}, Redis pub/sub channel layer, LIVE_COALESCE_SECONDS={coalesce}")
    for r in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
