"""A running Tryton for these tests: the seeded template is built once (cached under var/tryton/),
each test module gets its own copy and its own ``trytond`` on a free loopback port.

Without trytond the tests skip, and fail under REQUIRE_SERVICES=1 (CI), like the other service tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import service_missing  # noqa: F401

from .testing import TrytonServer, TrytonUnavailable, build_template, run_server


@pytest.fixture(scope="session")
def tryton_template() -> tuple[Path, dict]:
    cache = Path(os.environ.get("TRYTON_TEMPLATE_DIR") or Path(settings.VAR_DIR) / "tryton")
    started = time.monotonic()
    try:
        template = build_template(cache)
    except (TrytonUnavailable, OSError) as exc:
        service_missing(f"Tryton ({exc})")
    except Exception as exc:  # a failed trytond-admin or seed: show its output
        output = getattr(exc, "stderr", "") or ""
        pytest.fail(f"building the Tryton template failed: {exc}\n{str(output)[-3000:]}")
    os.environ["TRYTON_TEMPLATE_SECONDS"] = f"{time.monotonic() - started:.1f}"  # shown by the tests
    return template


@pytest.fixture(scope="module")
def tryton(tryton_template: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    template, ids = tryton_template
    try:
        with run_server(template, ids, tmp_path_factory.mktemp("tryton")) as server:
            yield server
    except TrytonUnavailable as exc:
        service_missing(f"trytond ({exc})")
