"""Helpers for the worker tests: a real ``celery -A portal worker`` subprocess on the Redis broker,
serving the pytest-django test database.

Each test gets its own queue (``CELERY_QUEUE``), so messages left over from other runs or other
tests never reach its worker, and the test process publishes to that queue too
(:func:`publish_to`). The worker runs in its own session so that :meth:`Worker.kill` can SIGKILL
the whole process group (main process and pool child) the way a lost machine does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.live_server import BASE_DIR, database_url

READY_TIMEOUT = 60.0  # generous: only a broken start waits it out, and CI machines can be busy
VISIBILITY_TIMEOUT = 5  # seconds; CELERY_VISIBILITY_TIMEOUT of the worker
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, *, interval: float = 0.05,
             details: Callable[[], str] = lambda: "") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{details()}")
        time.sleep(interval)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def log(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log()}")
            return " ready." in self.log(chars=1_000_000)

        wait_for(ready, timeout, f"worker {self.name} to be ready", interval=0.1, details=self.log)

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no shutdown, no acknowledgement."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def worker_env(*, queue: str, redis_url: str, db: dict[str, Any], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings_test",
            "REDIS_URL": redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_QUEUE": queue,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            # Sweep for abandoned tasks every second: other tests' workers share this Redis and its
            # sweep lock, so the sweep a worker makes when it starts may be skipped.
            "CELERY_RESTORE_SWEEP_SECONDS": "1",
            "DATABASE_URL": database_url(db),
            "RETRY_BASE_SECONDS": "0.2",
            # The outbox lease, scaled like the safety net's STALE_AFTER (60 s in production).
            "DELIVERY_LEASE_SECONDS": "6",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log_dir: Path, *, concurrency: int = 1) -> Worker:
    name = f"test-{uuid.uuid4().hex[:8]}"
    log_path = log_dir / f"celery-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--pool", "prefork", "--concurrency", str(concurrency),
                "-Q", env["CELERY_QUEUE"], "-n", f"{name}@%h",
                "--without-heartbeat", "--without-gossip", "--without-mingle",
                "-l", "INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, for killpg
        )
    return Worker(name=name, process=process, log_path=log_path)


@contextmanager
def publish_to(app: Any, *, broker_url: str, queue: str) -> Iterator[None]:
    """Make ``app`` (the test process's Celery app) publish for real to ``queue`` on ``broker_url``.

    Undone afterwards. ``app.amqp`` caches the queues and router built from the configuration, and
    ``app.pool`` the broker connection pool: both are dropped so that the new values take effect
    (pools are shared per broker URL by kombu's registry, so they are not closed here).
    """
    conf = app.conf
    saved = {key: conf[key] for key in ("task_always_eager", "broker_url", "task_default_queue")}

    def reset_caches() -> None:
        app._pool = None
        del app.amqp  # rebuilt lazily from conf

    conf.update(task_always_eager=False, broker_url=broker_url, task_default_queue=queue)
    reset_caches()
    try:
        yield
    finally:
        conf.update(saved)
        reset_caches()


@dataclass(frozen=True)
class Unacked:
    delivered_at: float
    task: str
    task_id: str


def unacked_for_queue(client: Any, queue: str) -> dict[str, Unacked]:
    """kombu's Redis ack emulation: the messages of ``queue`` that a worker took but did not
    acknowledge (``unacked`` hash + ``unacked_index`` sorted set), by delivery tag."""
    found = {}
    for tag, raw in client.hgetall("unacked").items():
        try:
            message, _exchange, routing_key = json.loads(raw)
            headers = message.get("headers") or {}
        except (ValueError, TypeError, AttributeError):
            continue
        if routing_key == queue:
            tag = tag.decode() if isinstance(tag, bytes) else tag
            found[tag] = Unacked(
                delivered_at=client.zscore("unacked_index", tag) or 0.0,
                task=str(headers.get("task", "")),
                task_id=str(headers.get("id", "")),
            )
    return found


def forget_queue(client: Any, queue: str) -> None:
    """Remove what a test's queue left in Redis (its lists, bindings and unacked messages)."""
    for tag in unacked_for_queue(client, queue):
        client.pipeline().zrem("unacked_index", tag).hdel("unacked", tag).execute()
    keys = list(client.scan_iter(match=f"*{queue}*"))
    if keys:
        client.delete(*keys)
