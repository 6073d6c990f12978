"""What the benchmark scripts share: a Django set up on a throw-away SQLite file, and percentiles."""

from __future__ import annotations

import os


def setup_django(db_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]
