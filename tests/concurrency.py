"""Run calls at the same moment in threads: the race tests of SQLite and PostgreSQL share it."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connections


def run_together(*calls: Callable[[], object], join_timeout: float = 30) -> list[object]:
    """Run ``calls`` in threads released at the same moment; each result or raised exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # the outcome under test, kept for the assertions
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=join_timeout)
    return results
