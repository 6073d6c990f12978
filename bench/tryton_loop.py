"""The loop against a real Tryton: poll-to-card latency and writeback time.

    .venv/bin/python bench/tryton_loop.py [--rounds 10]

Starts trytond on a copy of the connector tests' seeded database (built once under var/tryton/),
configures a ``tryton`` connector as ``make demo ERP=tryton`` does, then per round: zhang.san submits a
requisition in Tryton; one poll (what beat runs every ``poll_interval``) until 李四's card is sent to
the dev inbox ("poll → card"); 李四 approves in the portal and the eager writeback presses Tryton's
button ("decide → Tryton approved"). A change waits up to ``poll_interval`` more before its poll starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import setup_django  # noqa: E402


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    p50 = statistics.median(samples)
    return f"p50 {p50 * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.conf import settings
        from django.contrib.auth import get_user_model

        settings.CELERY_TASK_ALWAYS_EAGER = True
        from approvals import services
        from approvals.models import ApprovalDocument, Decision
        from erp.connectors.tryton.client import TrytonClient
        from erp.connectors.tryton.demo import new_requisition, setup_tryton_demo
        from erp.connectors.tryton.poll import poll
        from erp.connectors.tryton.testing import build_template, run_server
        from im.models import Delivery

        started = time.monotonic()
        template, ids = build_template(Path(settings.VAR_DIR).resolve() / "tryton")
        print(f"template ready in {time.monotonic() - started:.1f} s")  # noqa: T201
        (Path(tmp) / "tryton").mkdir()
        with run_server(template, ids, Path(tmp) / "tryton") as server:
            row = setup_tryton_demo(server, poll_interval=5)
            started = time.perf_counter()
            first = poll(row)
            initial = time.perf_counter() - started
            li_si = get_user_model().objects.get(username="li.si")
            requester = TrytonClient(server.base_url, server.database, "zhang.san", server.password)
            polls, decides = [], []
            for i in range(args.rounds):
                number = new_requisition(server, description=f"基准 {i}", requester=requester)
                row.refresh_from_db()
                started = time.perf_counter()
                result = poll(row)
                document = ApprovalDocument.objects.get(connector=row.connector, external_id=number)
                card = Delivery.objects.get(topic=document.topic, recipient=li_si)
                polls.append(time.perf_counter() - started)
                assert result.accepted >= 1 and card.status == "sent", (result, card.status, card.last_error)
                started = time.perf_counter()
                services.decide(li_si, document.pk, "approved", comment="同意", idempotency_key=f"bench-{number}")
                decides.append(time.perf_counter() - started)
                decision = Decision.objects.get(document=document)
                assert decision.writeback_status == "done", decision.writeback_error
            requester.close()
        print(f"\nTryton loop benchmark ({args.rounds} rounds, trytond on SQLite, portal on "  # noqa: T201
              f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, tasks eager)")
        print(f"  first poll (seed: {first.accepted} events)   {initial * 1000:7.1f} ms")  # noqa: T201
        print(f"  poll → card sent to the dev inbox  {ms(polls)}")  # noqa: T201
        print(f"  decide → Tryton approved (writeback) {ms(decides)}")  # noqa: T201
        print("  a change also waits up to poll_interval (5 s in the demo) for its poll to start")  # noqa: T201


if __name__ == "__main__":
    main()
