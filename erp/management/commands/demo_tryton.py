"""``make demo ERP=tryton``: the demo on a real local Tryton instead of the built-in demo ERP."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def _poll_forever(interval: float) -> None:
    """What Celery beat does in production: poll due connections, retry due work."""
    from django.db import close_old_connections

    from erp.tasks import poll_connectors
    from portal.tasks import requeue_stale_work

    while True:
        time.sleep(interval)
        try:
            poll_connectors()
            requeue_stale_work()
        except Exception as exc:  # keep polling; Tryton may be back next round
            print(f"poller: {exc}")  # noqa: T201
        finally:
            close_old_connections()


class Command(BaseCommand):
    help = "Run the demo against a real trytond (built once from the connector tests' seed, then kept in var/)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--tryton-port", type=int, default=int(os.environ.get("TRYTON_PORT", "8010")))
        parser.add_argument("--poll", type=int, default=5, help="poll interval in seconds")
        parser.add_argument("--no-serve", action="store_true", help="set up and poll once only")

    def handle(self, *args, host: str, port: int, tryton_port: int, poll: int, no_serve: bool, **options):
        from erp.connectors.tryton.demo import DEMO_PASSWORD, setup_tryton_demo
        from erp.connectors.tryton.poll import poll as poll_once
        from erp.connectors.tryton.testing import TrytonUnavailable, build_template, run_server
        from im.platforms.devinbox.guard import remote_bind_refusal

        refusal = remote_bind_refusal(host, enabled=settings.DEV_INBOX_ENABLED,
                                      allow_remote=settings.DEV_INBOX_ALLOW_REMOTE)
        if refusal:
            raise CommandError(refusal)
        if not os.environ.get("PORTAL_BASE_URL"):
            settings.PORTAL_BASE_URL = f"http://{host}:{port}"
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        settings.WHITENOISE_USE_FINDERS = False
        out = self.stdout.write
        var = Path(settings.VAR_DIR).resolve()
        out("Tryton: building the seeded database (first run only, about a minute)…")
        started = time.monotonic()
        try:
            template, ids = build_template(var / "tryton")
        except TrytonUnavailable as exc:
            raise CommandError(f"{exc}: run `make demo` once (it installs the test extras, trytond included)") from exc
        out(f"Tryton: database ready in {time.monotonic() - started:.0f} s")
        directory = var / "tryton-demo"
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(run_server(template, ids, directory, keep=True, port=tryton_port))
            (directory / "server.json").write_text(json.dumps(
                {"base_url": server.base_url, "database": server.database, "seed": server.seed}))
            row = setup_tryton_demo(server, poll_interval=poll)
            from django.contrib.auth import get_user_model

            from boards.demo import setup_tryton_board_rule  # the project's glue: the board scenario

            setup_tryton_board_rule(get_user_model().objects.get(username="li.si"))
            first = poll_once(row)
            base = f"http://{host}:{port}"
            out("")
            out("ERP ↔ IM portal demo on Tryton")
            out(f"  Tryton JSON-RPC: {server.base_url}/{server.database}/rpc/  (data kept in {directory})")
            out(f"  First poll:      {first.accepted} events accepted; then every {poll} s")
            out(f"  My approvals:    {base}/approvals/")
            out(f"  Dev inbox:       {base}/dev/inbox/")
            out(f"  Admin:           {base}/admin/   (admin / admin; ERP connectors → tryton → Test connection)")
            out(f"  Users (password {DEMO_PASSWORD!r}): li.si approves, zhang.san requests, wang.wu may not approve")
            out("  New requisition in Tryton:  .venv/bin/python manage.py tryton_new_requisition --description 轴承")
            out("  Group board: a stock change of SKU-123 in Tryton (e.g. a stock count) gives li.si a card with")
            out(f"               一键建群; the supplier's code (liu.wei@…) is in {base}/dev/mail/ (admin)")
            out("")
            if no_serve:
                return
            threading.Thread(target=_poll_forever, args=(1.0,), daemon=True).start()
            from daphne.cli import CommandLineInterface

            CommandLineInterface().run(["-b", host, "-p", str(port), "portal.asgi:application"])
