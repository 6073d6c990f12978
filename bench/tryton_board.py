"""What a group board costs on a real Tryton: the reads behind every board refetch and the writes
behind the supplier's and the buyer's actions.

    .venv/bin/python bench/tryton_board.py [--rounds 20]

Starts trytond on a copy of the connector tests' seeded database (built once under var/tryton/) and
measures, through ``TrytonConnector`` over JSON-RPC: an item's open purchase lines read afresh (what
a board refetch costs when the cache is cold) and from the cache (every other open board after a
push), one line read (the stale check before an action), a delivery confirmation (note, moves'
planned date under Tryton's lock, read back), and an expedite. Prints one table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import percentile, setup_django  # noqa: E402


def timed(rounds: int, step: Callable[[int], object]) -> list[float]:
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        step(n)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.conf import settings
        from django.core.cache import cache

        from erp.connectors.base import LineConfirmation
        from erp.connectors.tryton.client import TrytonClient
        from erp.connectors.tryton.connector import TrytonConnector
        from erp.connectors.tryton.seed_tryton import SUPPLIER_EMAIL
        from erp.connectors.tryton.testing import build_template, run_server

        template, ids = build_template(Path(settings.VAR_DIR) / "tryton")
        with run_server(template, ids, Path(tmp)) as server:
            erp = TrytonConnector(client=TrytonClient(server.base_url, server.database, "li.si", server.password))
            erp.client.context  # noqa: B018 - log in once, as a running portal process has
            line_id = str(server.seed["purchases"][SUPPLIER_EMAIL]["line"])
            rows: list[tuple[str, list[float]]] = []

            settings.TRYTON_PURCHASE_LINES_CACHE_SECONDS = 0
            rows.append(("open lines of an item, read afresh (cold refetch)",
                         timed(args.rounds, lambda n: erp.purchase_order_lines(sku="SKU-123"))))
            settings.TRYTON_PURCHASE_LINES_CACHE_SECONDS = 60
            cache.clear()
            erp.purchase_order_lines(sku="SKU-123")
            rows.append(("open lines of an item, cached (every other board)",
                         timed(args.rounds, lambda n: erp.purchase_order_lines(sku="SKU-123"))))
            rows.append(("one line (the check before an action)",
                         timed(args.rounds, lambda n: erp.purchase_order_line(line_id))))

            def confirm(n: int) -> None:
                line = erp.purchase_order_line(line_id)
                erp.confirm_delivery(LineConfirmation(
                    line_id=line_id, delivery_date=dt.date.today() + dt.timedelta(days=5 + n), quantity=None,
                    expected_version=line.version, actor="bench", idempotency_key=f"bench:confirm:{n}"))

            def expedite(n: int) -> None:
                line = erp.purchase_order_line(line_id)
                erp.expedite_line(line_id, expected_version=line.version, actor="bench",
                                  idempotency_key=f"bench:expedite:{n}")

            rows.append(("confirm a delivery date (check, note, moves, read back)", timed(args.rounds, confirm)))
            rows.append(("expedite (check, note, read back)", timed(args.rounds, expedite)))

    print(f"\nTryton board calls, {args.rounds} rounds each (ms)")  # noqa: T201
    print(f"{'step':58} {'p50':>8} {'p90':>8} {'max':>8}")  # noqa: T201
    for name, samples in rows:
        print(f"{name:58} {percentile(samples, 50) * 1000:8.1f} {percentile(samples, 90) * 1000:8.1f} "  # noqa: T201
              f"{max(samples) * 1000:8.1f}")


if __name__ == "__main__":
    main()
