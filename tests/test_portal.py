"""Health, the demo command, the dev inbox page, and the pages' weight budget."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from django.core.management import call_command

from approvals.models import ApprovalDocument
from tests.conftest import unlock_phone

pytestmark = pytest.mark.django_db


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True


def test_demo_setup_is_idempotent(demo, committed):
    from portal.demo import setup_demo

    documents = ApprovalDocument.objects.count()
    with committed():
        again = setup_demo()
    assert again.announced == 0 and ApprovalDocument.objects.count() == documents >= 4
    assert {u[0] for u in again.users} == {"zhang.san", "li.si", "wang.wu", "zhao.liu", "chen.qi"}


def test_demo_command_sets_up_without_serving(capsys, settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    call_command("demo", "--no-serve", "--port", "8123")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/dev/inbox/" in out and "li.si" in out


def test_dev_inbox_shows_each_persons_cards(client, demo, users):
    unlock_phone(client, users["li.si"], users["chen.qi"])
    page = client.get("/dev/inbox/?user=li.si").content.decode()
    assert "紧急采购: 伺服电机" in page and 'data-live-topic="devinbox.' in page
    assert "伺服电机" not in client.get("/dev/inbox/?user=chen.qi").content.decode()


def test_approval_page_is_small(client, demo, users):
    """Budget for IM webviews: the page and everything it loads, compressed, under 40 KB."""
    from django.contrib.staticfiles import finders

    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    client.force_login(users["li.si"])
    html = client.get(document.get_absolute_url()).content
    assets = [finders.find(p) for p in ("vendor/htmx.min.js", "portal/live.js", "portal/app.css")]
    total = len(gzip.compress(html)) + sum(len(gzip.compress(Path(a).read_bytes())) for a in assets)
    assert total < 40 * 1024, total
    # Nothing is loaded from another host: the page must work without outside network.
    assert b'src="http' not in html and b'href="http' not in html.replace(b'href="http://testserver', b"")


def test_demo_console_is_quiet_then_one_line_per_loop_step(tmp_path):
    """`make demo`'s console (DEMO_CONSOLE=1): the URLs and users, no JSON lines, no task traces and
    none of the seed's own events; afterwards each loop step is one short line."""
    import os
    import subprocess
    import sys

    script = (
        "import django, logging; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('demo', '--no-serve', '--port', '8124')\n"
        "from portal.observability import hooks\n"
        "hooks.logger.info('decision recorded', extra={'outcome': 'approved', 'document_id': 7})\n"
    )
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "LOG_LEVEL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", DEMO_CONSOLE="1", DEV_INBOX_ENABLED="1",
               DEMO_ERP_ENABLED="1", PORTAL_VAR_DIR=str(tmp_path), STATIC_ROOT=str(tmp_path / "static"))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    console = done.stdout + done.stderr
    assert "http://127.0.0.1:8124/dev/inbox/" in console and "李四" in console
    assert '{"' not in console, console[:2000]  # no JSON log lines
    assert "erp event accepted" not in console and "Task " not in console, console[:2000]
    last = console.strip().splitlines()[-1]
    assert last.endswith("decision recorded  outcome=approved  document_id=7"), last
