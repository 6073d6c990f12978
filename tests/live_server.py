"""Helpers for the browser tests: a Daphne subprocess serving the pytest-django test database, and
Debian Chromium launched through Playwright (never a downloaded browser).

The server is a separate process, so it sees only committed data: tests that use it need
``transactional_db``. It runs the real ASGI stack (HTTP and websockets) with Celery tasks eager
in-process, so everything a click causes (decision, live publish, writeback, card edits) happens
inside the server and reaches the browsers through its own channel layer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

BASE_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_TIMEOUT = 60.0  # generous: only a broken start waits it out, and CI machines can be busy
STOP_TIMEOUT = 5.0


def database_url(db: dict[str, Any]) -> str:
    """A DATABASE_URL for the database described by a Django ``DATABASES`` entry.

    Call it after pytest-django created the test database: then NAME is the test database
    (the SQLite file under var/, or ``test_<name>`` on PostgreSQL).
    """
    # django-prometheus wraps the backends (portal/settings.py "Observability"): same databases.
    engine = db["ENGINE"].replace("django_prometheus.db.backends.", "django.db.backends.")
    # By the backend's last name: wrappers such as django_prometheus's keep it (….postgresql).
    kind = engine.rsplit(".", 1)[-1]
    if kind == "sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("an in-memory SQLite test database cannot be shared with a server process")
        return "sqlite:///" + str(Path(name).resolve())
    if kind in ("postgresql", "postgresql_psycopg2"):
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or ""
        if host.startswith("/"):  # a socket directory: pass it as a query parameter
            netloc, query = auth, "?host=" + quote(host, safe="")
        else:
            netloc, query = auth + (host or "localhost"), ""
        if db.get("PORT"):
            netloc += f":{db['PORT']}"
        return f"postgres://{netloc}/{quote(str(db['NAME']), safe='')}{query}"
    raise RuntimeError(f"no DATABASE_URL for the {engine} backend")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def collect_static(static_root: Path) -> None:
    """What a deployment does before it serves: collect and pre-compress the static files, so that
    the browser tests measure what goes over the wire in production."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings_test", STATIC_ROOT=str(static_root))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=BASE_DIR, env=env, check=True
    )


def server_env(port: int, db: dict[str, Any], secret_key: str, static_root: Path) -> dict[str, str]:
    env = dict(os.environ)  # REDIS_URL and the rest as the parent has them
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set in the test process for Playwright only
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings_test",
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "DATABASE_URL": database_url(db),
            # Link tokens are signed in the test process and checked in the server.
            "SECRET_KEY": secret_key,
            "STATIC_ROOT": str(static_root),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "HTTPS": "0",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": env.get("LIVE_SERVER_LOG_LEVEL", "WARNING"),
        }
    )
    return env


def _wait_healthy(server: LiveServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the live server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"the live server did not answer /healthz in {timeout:.0f}s ({last_error}):\n"
                       f"{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def run_live_server(
    db: dict[str, Any], secret_key: str, log_dir: Path, attempts: int = 3, extra_env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """Start Daphne on a free port against ``db``; wait for /healthz; stop it afterwards."""
    error: Exception | None = None
    static_root = log_dir / "staticfiles"
    collect_static(static_root)
    for attempt in range(attempts):
        port = free_port()  # another process may grab it before Daphne binds: then try again
        log_path = log_dir / f"daphne-{port}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "portal.daphne_main", "-b", "127.0.0.1", "-p", str(port),
                 "portal.asgi:application"],
                cwd=BASE_DIR,
                env={**server_env(port, db, secret_key, static_root), **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = LiveServer(url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path)
        try:
            _wait_healthy(server, STARTUP_TIMEOUT)
        except RuntimeError as exc:
            _stop(process)
            error = exc
            continue
        try:
            yield server
        finally:
            _stop(process)
        return
    raise RuntimeError(f"could not start the live server: {error}")


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
