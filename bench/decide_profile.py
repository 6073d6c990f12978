"""What one decision costs the web process (issue #19): the decide API and the approval panel's refetch.

    DATABASE_URL=postgres://…/yours REDIS_URL=redis://…/N .venv/bin/python bench/decide_profile.py \
        [--decisions 50] [--profile] [--top 30]

N approval documents (two approvers each) are handled as a worker does (``bench/worker_profile.py``),
then li.si decides each through ``POST /api/approvals/<id>/decision`` (token) and the requester's and
the approver's open pages refetch the panel (``GET /approvals/<id>/panel/``, as htmx after a push),
through Django's test client in this process: no server, so the figures are the view's own (CPU, wall,
queries), without Daphne. Tasks the request queues go to a queue of this run's own that nobody reads
(removed at the end), as a web process hands them to the broker. With ``SHOW_SQL=1`` each query of the
first decision and the first refetch is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import worker_profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="a cProfile (CPU) of the measured requests")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "")
    queue = f"decide-profile-{uuid.uuid4().hex[:8]}"
    os.environ["PROFILE_REDIS_URL"] = redis_url
    with tempfile.TemporaryDirectory() as tmp, worker_profile.sink_process() as sink_url:
        worker_profile.setup(os.environ.get("DATABASE_URL"), sink_url, Path(tmp))
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from rest_framework.authtoken.models import Token

        from approvals.models import ApprovalDocument
        from im import services

        services._in_worker = lambda: True
        logins = worker_profile.approver_logins(2)
        worker_profile.store_events(args.decisions + 5, logins)
        worker_profile.work()
        # From here on, as in a web process: tasks go to the broker (a queue nobody reads).
        settings.CELERY_TASK_ALWAYS_EAGER = not redis_url
        settings.CELERY_TASK_DEFAULT_QUEUE = queue
        from portal.celery import app

        app.conf.task_always_eager = not redis_url
        app.conf.task_default_queue = queue
        users = get_user_model().objects
        token = Token.objects.get_or_create(user=users.get(username="li.si"))[0].key
        api = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
        pages = []
        for username in ("li.si", "zhang.san"):
            page = Client(HTTP_HOST="localhost")
            page.force_login(users.get(username=username))
            pages.append(page)
        documents = list(ApprovalDocument.objects.filter(status=ApprovalDocument.Status.PENDING,
                                                   external_id__startswith="PR-BW-").order_by("pk"))
        warm, documents = documents[:5], documents[5:5 + args.decisions]

        queries = [0]
        show = [bool(os.environ.get("SHOW_SQL"))]

        def count(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
            queries[0] += 1
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                if show[0]:
                    print(f"SQL {(time.perf_counter() - started) * 1000:5.2f} ms  {sql[:200]}")

        def decide(document: ApprovalDocument) -> None:
            response = api.post(f"/api/approvals/{document.pk}/decision", {"outcome": "approved", "comment": "bench"},
                                content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"profile-{document.pk}")
            assert response.status_code == 201, (document.pk, response.status_code, response.content[:300])

        def refetch(document: ApprovalDocument) -> None:
            for page in pages:
                response = page.get(f"/approvals/{document.pk}/panel/", HTTP_HX_REQUEST="true")
                assert response.status_code == 200, response.status_code

        for document in warm:
            decide(document)
            refetch(document)
        figures: dict[str, dict[str, list[float]]] = {"decide": {}, "panel refetch (2 pages)": {}}
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        with connection.execute_wrapper(count):
            for document in documents:
                for name, step in (("decide", decide), ("panel refetch (2 pages)", refetch)):
                    if show[0]:
                        print(f"-- {name}")
                    queries[0] = 0
                    cpu, wall = time.process_time(), time.perf_counter()
                    if profiler:
                        profiler.enable()
                    step(document)
                    if profiler:
                        profiler.disable()
                    row = figures[name]
                    row.setdefault("cpu", []).append((time.process_time() - cpu) * 1000)
                    row.setdefault("wall", []).append((time.perf_counter() - wall) * 1000)
                    row.setdefault("queries", []).append(queries[0])
                show[0] = False
        print(f"\n{len(documents)} decisions, database {connection.vendor}, Redis {'yes' if redis_url else 'no'}\n")
        print("| request | ms CPU p50 | ms wall p50 | ms wall p90 | queries |\n| --- | ---: | ---: | ---: | ---: |")
        for name, row in figures.items():
            wall = sorted(row["wall"])
            print(f"| {name} | {statistics.median(row['cpu']):.1f} | {statistics.median(wall):.1f} "
                  f"| {wall[int(len(wall) * 0.9)]:.1f} | {statistics.median(row['queries']):.0f} |")
        if redis_url:
            import redis

            redis.Redis.from_url(redis_url).delete(queue)
        if profiler:
            worker_profile.print_profile(profiler, args.top)


if __name__ == "__main__":
    main()
