"""Benchmark of the skeleton's loop, in-process, on the embedded default (or DATABASE_URL/REDIS_URL).

    .venv/bin/python bench/loop.py [--events 300]

Measures what a user of the loop waits for, one step at a time, and prints a table:
signed intake of `erp.approval.requested` (parse, verify, store, route, card to the dev inbox),
`decide()` with its writeback, the approval page and the card build. Each row gives throughput and
latency percentiles; the page row also gives its gzip size. Targets are printed beside the results.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import percentile, setup_django  # noqa: E402


def row(name: str, samples: list[float], target: str, extra: str = "") -> tuple:
    total = sum(samples)
    return (name, len(samples), f"{len(samples) / total:,.0f}/s", f"{statistics.median(samples) * 1000:.1f}",
            f"{percentile(samples, 99) * 1000:.1f}", target, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.test.utils import setup_test_environment

        setup_test_environment()  # ALLOWED_HOSTS=testserver
        settings.CELERY_TASK_ALWAYS_EAGER = True
        from approvals import services
        from approvals.models import ApprovalDocument
        from erp.models import Connector
        from erp.signing import make_cloudevent, sign
        from im.cards import build_card
        from portal.demo import setup_demo

        setup_demo()
        connector = Connector.objects.get(slug="demo")
        li_si = get_user_model().objects.get(username="li.si")
        client = Client()

        intake, bodies = [], []
        for i in range(args.events):
            data = {
                "document": {"id": f"PR-BENCH-{i:05d}", "kind": "purchase_requisition", "title": "紧急采购: 伺服电机",
                             "amount": "12800.00", "currency": "CNY", "requester": "zhang.san", "project": "项目A",
                             "lines": [{"sku": "SKU-123", "name": "伺服电机", "qty": "4", "unit_price": "3200.00"}]},
                "approvers": ["li.si"],
            }
            body = json.dumps(make_cloudevent("erp.approval.requested", "urn:erp:bench", data)).encode()
            bodies.append((body, sign(connector.webhook_secret, body)))
        def post(body: bytes, headers: dict) -> None:
            response = client.post("/api/erp/demo/events", data=body, content_type="application/cloudevents+json",
                                   headers={k: v for k, v in headers.items() if k != "content-type"})
            assert response.status_code == 202, response.content

        timed, traced = bodies[: len(bodies) - 20], bodies[len(bodies) - 20:]
        for body, headers in timed:
            started = time.perf_counter()
            post(body, headers)
            intake.append(time.perf_counter() - started)
        # Memory in a separate pass: tracemalloc slows everything it watches several times over.
        tracemalloc.start()
        for body, headers in traced:
            post(body, headers)
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        documents = list(ApprovalDocument.objects.filter(external_id__startswith="PR-BENCH-").order_by("pk"))
        cards = []
        for document in documents[:100]:
            started = time.perf_counter()
            assert build_card(document.topic, li_si) is not None
            cards.append(time.perf_counter() - started)

        client.force_login(li_si)
        pages, size = [], 0
        for document in documents[:100]:
            started = time.perf_counter()
            response = client.get(document.get_absolute_url())
            pages.append(time.perf_counter() - started)
            assert response.status_code == 200
            size = len(gzip.compress(response.content))

        decisions = []
        for i, document in enumerate(documents):
            started = time.perf_counter()
            services.decide(li_si, document.pk, "approved", idempotency_key=f"bench-{i}")
            decisions.append(time.perf_counter() - started)

        rows = [
            row("signed intake → card (HTTP, in-process)", intake, "p99 < 50 ms",
                f"peak traced memory over 20 events {peak / 1024 / 1024:.1f} MiB"),
            row("build_card (permission-checked)", cards, "p99 < 10 ms"),
            row("approval page GET", pages, "p99 < 50 ms", f"{size} B gzip HTML"),
            row("decide() + writeback (eager)", decisions, "p99 < 50 ms"),
        ]
        header = ("step", "n", "throughput", "p50 ms", "p99 ms", "target", "notes")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        print(f"\nloop benchmark: {args.events} events, database {db}, "
              f"channel layer {settings.CHANNEL_LAYERS['default']['BACKEND'].rsplit('.', 1)[-1]}")
        for r in [header, *rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
