"""The production shape on one machine: N Daphne processes behind one port, C Celery workers, one beat.

    python -m portal.serve          # what `make serve` runs, after migrate and collectstatic

Settings come from the environment (README, "Operations"): the portal's own (DATABASE_URL, REDIS_URL,
SECRET_KEY, ALLOWED_HOSTS, …) and SERVE_HOST (127.0.0.1), SERVE_PORT (8000), DAPHNE_PROCESSES (2),
CELERY_WORKERS (2), CELERY_CONCURRENCY (2 pool processes per worker), CELERY_BEAT (1; exactly one
machine of a cluster runs beat), DB_POOL_MAX_SIZE (10 database connections per Daphne process),
SERVE_LOG_LEVEL (INFO).

How: this process binds the one listening socket and hands it to every ``daphne --fd`` child, so the
kernel spreads new connections over the Daphne processes (no reverse proxy, no port per process);
the Redis channel layer carries websocket pushes between them, so no sticky sessions are needed.
Each child runs in its own session (process group). SIGTERM/SIGINT stop every child (SIGTERM, then
SIGKILL after a grace period). Nothing is restarted silently: a child that exits on its own is logged
and the whole supervisor stops with status 1, for systemd (or whatever started it) to restart.

Small API for tests, benchmarks and the fault-injection suite (tests/test_serve.py, bench/run.py):

    handle = start(processes=2, workers=2, env={...}, log_dir=tmp)   # socket bound, children started
    handle.wait_ready()           # every Daphne listening, every worker and beat up
    handle.port, handle.pids      # {"daphne": [...], "worker": [...], "beat": [...]}
    handle.kill_worker(0)         # SIGKILL one worker with its pool children (a lost machine)
    handle.stop()                 # graceful; returns {name: exit code}

This module imports no Django: the supervisor stays small and its children load the project.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL: a worker finishes its current task meanwhile
logger = logging.getLogger("portal.serve")


@dataclass
class Child:
    name: str  # daphne-0, worker-1, beat
    kind: str  # daphne, worker, beat
    process: subprocess.Popen
    log_path: Path | None
    expected_exit: bool = False  # set when we stop or kill it, so its exit is not reported as a crash

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self, chars: int = 8000) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def signal_group(self, sig: int, *, even_if_exited: bool = False) -> None:
        """Signal the child's process group (a worker's pool processes are in it too)."""
        if self.process.poll() is None or even_if_exited:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)


@dataclass
class Served:
    """What :func:`start` returns: the bound port and the children."""

    host: str
    port: int  # 0 when this machine runs no Daphne
    sock: socket.socket | None
    children: list[Child]
    crashed: list[tuple[str, int]] = field(default_factory=list)  # (name, exit code) of unexpected exits
    _stopping: bool = False
    _watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pids(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {"daphne": [], "worker": [], "beat": []}
        for child in self.children:
            found[child.kind].append(child.pid)
        return found

    def of(self, kind: str) -> list[Child]:
        return [child for child in self.children if child.kind == kind]

    def logs(self, chars: int = 4000) -> str:
        return "\n".join(f"--- {c.name} (pid {c.pid}) ---\n{c.log(chars)}" for c in self.children)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return when every child says it is up; raise if one exits or time runs out.

        Reads the children's logs: needs ``log_dir`` and LOG_LEVEL=INFO (or lower) in their env, since
        "Listening on", " ready." and "beat: Starting" are INFO lines."""
        markers = {"daphne": "Listening on", "worker": " ready.", "beat": "beat: Starting"}
        deadline = time.monotonic() + timeout
        waiting = list(self.children)
        while waiting:
            for child in list(waiting):
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.log()}")
                if child.log_path is None or markers[child.kind] in child.log(chars=1_000_000):
                    waiting.remove(child)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(c.name for c in waiting)
                raise RuntimeError(f"not ready after {timeout:.0f}s: {names}\n{self.logs()}")
            time.sleep(0.1)

    def kill_worker(self, index: int, sig: int = signal.SIGKILL) -> None:
        """SIGKILL worker ``index`` and its pool children: no shutdown, no acknowledgement."""
        child = self.of("worker")[index]
        child.expected_exit = True
        child.signal_group(sig)
        child.process.wait(timeout=STOP_GRACE)

    def first_exit(self) -> Child | None:
        """A child that exited though nobody stopped it, or None."""
        for child in self.children:
            if child.process.poll() is not None and not child.expected_exit:
                return child
        return None

    def stop(self, grace: float = STOP_GRACE) -> dict[str, int]:
        """SIGTERM every child (Daphne first, so no new request starts), wait ``grace`` seconds, SIGKILL
        what is left. Returns each child's exit code (negative: killed by that signal). Idempotent."""
        if self._stopping:
            return {child.name: child.process.returncode for child in self.children}
        self._stopping = True
        for child in self.children:
            child.expected_exit = True
        for kind in ("daphne", "beat", "worker"):
            for child in self.of(kind):
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("%s (pid %s) did not stop in %.0fs: SIGKILL", child.name, child.pid, grace)
                child.signal_group(signal.SIGKILL)
                child.process.wait(timeout=5)
        # Pool processes of a worker live in its process group: make sure none outlives its leader.
        for child in self.children:
            child.signal_group(signal.SIGKILL, even_if_exited=True)
        if self.sock is not None:
            self.sock.close()
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        return {child.name: child.process.returncode for child in self.children}

    def _watch(self) -> None:
        """Log every exit nobody asked for (the fault suite kills on purpose: kill_worker marks those)."""
        reported: set[str] = set()
        while not self._stopping:
            for child in self.children:
                code = child.process.poll()
                if code is not None and not child.expected_exit and child.name not in reported:
                    reported.add(child.name)
                    self.crashed.append((child.name, code))
                    logger.error("%s (pid %s) exited with %s; not restarted", child.name, child.pid, code)
            time.sleep(0.2)


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The one listening socket every Daphne process accepts on (inheritable, so children get it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def daphne_environment(env: Mapping[str, str]) -> dict[str, str]:
    """A Daphne process's environment: a pool of at most DB_POOL_MAX_SIZE (10) PostgreSQL connections,
    not a connection per request (Daphne runs each request on a thread of its own)."""
    return {**env, "DB_CONN_MAX_AGE": "0", "DB_POOL_MAX_SIZE": env.get("DB_POOL_MAX_SIZE") or "10"}


def _spawn(name: str, kind: str, argv: list[str], env: Mapping[str, str], log_dir: Path | None,
           pass_fds: tuple[int, ...] = ()) -> Child:
    log_path = log_dir / f"{name}.log" if log_dir is not None else None
    out = log_path.open("ab") if log_path is not None else None
    try:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            argv, cwd=BASE_DIR, env=dict(env), pass_fds=pass_fds, stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,  # its own process group: signals reach a worker's pool children too
        )
    finally:
        if out is not None:
            out.close()
    logger.info("started %s (pid %s)", name, process.pid)
    return Child(name=name, kind=kind, process=process, log_path=log_path)


def start(processes: int = 2, workers: int = 2, env: Mapping[str, str] | None = None, *, host: str = "127.0.0.1",
          port: int = 0, beat: bool = True, concurrency: int = 2, log_dir: Path | None = None,
          log_level: str = "INFO") -> Served:
    """Bind ``host:port`` (0: a free port) and start the children; returns at once (see ``wait_ready``).

    ``env`` is the whole environment of the children (default: this process's). ``log_dir``: each
    child's output in ``<name>.log`` there (needed by ``wait_ready``); None: inherited stdout/stderr.
    """
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    if processes + workers > 1 and not child_env.get("REDIS_URL"):
        # Without Redis each process has its own in-memory channel layer and runs tasks in-process.
        raise ValueError("REDIS_URL is needed for more than one process (channel layer and Celery broker)")
    # Django under ASGI runs each request's sync code on a thread of its own, so a persistent database
    # connection (CONN_MAX_AGE > 0) would be left behind by every request until PostgreSQL runs out of
    # slots. Daphne gets a pool of at most DB_POOL_MAX_SIZE connections per process instead (settings:
    # PostgreSQL only); a Celery pool process runs one task at a time and keeps one connection.
    daphne_env = daphne_environment(child_env)
    worker_env = {**child_env, "DB_CONN_MAX_AGE": child_env.get("DB_CONN_MAX_AGE") or "60"}
    worker_env.pop("DB_POOL_MAX_SIZE", None)
    sock = bind(host, port) if processes else None  # a worker-only machine listens on nothing
    served = Served(host=host, port=sock.getsockname()[1] if sock else 0, sock=sock, children=[])
    python = sys.executable
    try:
        for i in range(processes):
            assert sock is not None
            served.children.append(_spawn(
                f"daphne-{i}", "daphne",
                # --server-name: the Server header says which process answered (tests, debugging).
                [python, "-m", "portal.daphne_main", "--fd", str(sock.fileno()), "--server-name", f"daphne-{i}",
                 "portal.asgi:application"],
                daphne_env, log_dir, pass_fds=(sock.fileno(),)))
        for i in range(workers):
            served.children.append(_spawn(
                f"worker-{i}", "worker",
                # gossip and mingle are for remote control between workers, which we do not use.
                [python, "-m", "celery", "-A", "portal", "worker", "-n", f"worker{i}@%h",
                 "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "-l", log_level],
                worker_env, log_dir))
        if beat:
            schedule = child_env.get("CELERY_BEAT_SCHEDULE_FILE") or str(
                Path(child_env.get("PORTAL_VAR_DIR", BASE_DIR / "var")) / "celerybeat-schedule")
            Path(schedule).parent.mkdir(parents=True, exist_ok=True)
            served.children.append(_spawn(
                "beat", "beat", [python, "-m", "celery", "-A", "portal", "beat", "-s", schedule, "-l", log_level],
                child_env, log_dir))
    except BaseException:
        served.stop(grace=2)
        raise
    served._watcher = threading.Thread(target=served._watch, name="serve-watch", daemon=True)
    served._watcher.start()
    return served


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def main() -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a child exits on its own (exit 1)."""
    logging.basicConfig(level=os.environ.get("SERVE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # /metrics adds up every process's values from this directory (portal/observability/metrics.py);
    # emptied at each start, as prometheus_client asks, so that dead processes' files do not count.
    var_dir = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
    metrics_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var_dir / "prometheus")))
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    processes = _env_int("DAPHNE_PROCESSES", 2)
    workers = _env_int("CELERY_WORKERS", 2)
    from im.platforms.devinbox.guard import refusal_from_env

    refusal = refusal_from_env(os.environ.get("SERVE_HOST", "127.0.0.1"))
    if refusal and processes:
        logger.error("%s", refusal)
        return 2
    served = start(processes, workers, host=os.environ.get("SERVE_HOST", "127.0.0.1"),
                   port=_env_int("SERVE_PORT", 8000), beat=os.environ.get("CELERY_BEAT", "1") == "1",
                   concurrency=_env_int("CELERY_CONCURRENCY", 2),
                   log_level=os.environ.get("SERVE_LOG_LEVEL", "INFO"))
    logger.info("serving on %s: %s", served.url, served.pids)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    status = 0
    while not stop.wait(0.5):
        crashed = served.first_exit()
        if crashed is not None:
            logger.error("%s (pid %s) exited with %s: stopping everything", crashed.name, crashed.pid,
                         crashed.process.returncode)
            status = 1
            break
    codes = served.stop()
    logger.info("stopped: %s", codes)
    return status


if __name__ == "__main__":
    sys.exit(main())
