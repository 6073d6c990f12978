"""A widget page's time and queries per request, in this process (issue #19: the page's permission reads).

    DATABASE_URL=postgres://… [REDIS_URL=redis://…/N] .venv/bin/python bench/widget_page.py [--requests 200]

Django's test client GETs the stock widget (``/w/stock/SKU-123/``) as a signed-in demo user, as the
browser's first load does, ``--requests`` times after a few warm-up requests; it prints the wall time
per request (p50, p90), this process's CPU per request (the database's is not in it) and the queries of
one request. The database is DATABASE_URL when set (a PostgreSQL database this run migrates, empties
and fills with the demo: use a database of your own), else a temporary SQLite file; the Django cache
is Redis when REDIS_URL is set, else in-process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--path", default="/w/stock/SKU-123/",
                        help="a path, or approval:<document id> for that document's approval widget")
    parser.add_argument("--user", default="zhao.liu")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="widget-page-"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings_test", "CELERY_TASK_ALWAYS_EAGER": "1",
        "LOG_LEVEL": "WARNING", "DEBUG": "0", "PORTAL_VAR_DIR": str(tmp / "var"),
        "STATIC_ROOT": str(tmp / "static"),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'pages.sqlite3'}",
    })
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from portal.demo import setup_demo

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    call_command("flush", verbosity=0, interactive=False)
    setup_demo()
    if args.path.startswith("approval:"):
        from approvals.models import ApprovalDocument

        args.path = f"/w/approval/{ApprovalDocument.objects.get(external_id=args.path.split(':', 1)[1]).pk}/"
    client = Client()
    client.force_login(get_user_model().objects.get(username=args.user))
    for _ in range(5):
        assert client.get(args.path).status_code == 200
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):  # survives the request's reset_queries(), unlike queries_log
        client.get(args.path)
    times = []
    cpu = time.process_time()
    for _ in range(args.requests):
        started = time.perf_counter()
        response = client.get(args.path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    cpu = (time.process_time() - cpu) * 1000 / args.requests
    times.sort()
    print(f"{args.path} as {args.user}, {args.requests} requests, database {connection.vendor}, "
          f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    print(f"p50 {statistics.median(times):.1f} ms, p90 {times[int(len(times) * 0.9)]:.1f} ms; "
          f"{cpu:.1f} ms CPU (this process); {len(queries)} queries per request")
    if os.environ.get("SHOW_SQL"):
        for sql in queries:
            print(" ", sql[:200])


if __name__ == "__main__":
    main()
