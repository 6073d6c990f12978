"""One command demo: migrate, seed, and serve with Daphne on the embedded default."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.demo import ADMIN_USERNAME, DEMO_PASSWORD, setup_demo


def _sweep_forever(interval: float) -> None:
    """What Celery beat does in production: retry due work, recover lost tasks."""
    from django.db import close_old_connections

    from portal.tasks import requeue_stale_work

    while True:
        time.sleep(interval)
        try:
            requeue_stale_work()
            from notifications.services import tick

            tick()  # reminders, escalations, digests, quiet hours ending
        except Exception as exc:  # keep sweeping; the next round may succeed
            print(f"sweeper: {exc}")
        finally:
            close_old_connections()


def _run_once(job, *args) -> None:
    """What beat's nightly run does, once, beside the demo server."""
    from django.db import close_old_connections

    try:
        job(*args)
    except Exception as exc:  # the demo goes on without it; say why
        print(f"foresight: {exc}")
    finally:
        close_old_connections()


@contextmanager
def _loop_steps_muted() -> Iterator[None]:
    """Set-up without the loop-step lines (DEMO_CONSOLE): warnings still show."""
    loggers = [logging.getLogger(name) for name in ("portal.flow", "erp.intake")]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(max(each.level, logging.WARNING))
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


class Command(BaseCommand):
    help = "Run the demo: SQLite, in-memory channel layer, in-process tasks, demo ERP and dev inbox."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-serve", action="store_true", help="set up only")

    def handle(self, *args, host: str, port: int, no_serve: bool, **options):
        from im.platforms.devinbox.guard import remote_bind_refusal

        refusal = remote_bind_refusal(host, enabled=settings.DEV_INBOX_ENABLED,
                                      allow_remote=settings.DEV_INBOX_ALLOW_REMOTE)
        if refusal:
            raise CommandError(refusal)
        if not os.environ.get("PORTAL_BASE_URL"):
            settings.PORTAL_BASE_URL = f"http://{host}:{port}"  # card links point at this server
        from erp.connectors.demo.services import ensure_connector
        from foresight.demo import run_foresight_jobs, setup_foresight_demo
        from notifications.demo import setup_notifications_demo

        with _loop_steps_muted():  # the seed's own events are not the loop a newcomer watches
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            settings.WHITENOISE_USE_FINDERS = False  # serve the collected, pre-compressed copies
            summary = setup_demo()
            setup_notifications_demo(ensure_connector())  # the five scenarios' rules and the sales group
            setup_foresight_demo(ensure_connector())  # two years of ERP history for the forecasts
        base = f"http://{host}:{port}"
        out = self.stdout.write
        out("")
        out("ERP ↔ IM portal demo")
        out(f"  My approvals:   {base}/approvals/")
        out(f"  Dev inbox:      {base}/dev/inbox/    (what each person's IM shows; each phone asks for its"
            f" owner's password once)")
        out(f"  Demo ERP:       {base}/erp/demo/     (sign in as {ADMIN_USERNAME}; make new events)")
        out(f"  Admin:          {base}/admin/        ({ADMIN_USERNAME} / admin)")
        out(f"  API schema:     {base}/api/schema/   event types: {base}/api/events/")
        out(f"  Demo users (password {DEMO_PASSWORD!r}):")
        for login, name, title in summary.users:
            out(f"    {login:<10} {name} {title}")
        out("")
        if no_serve:
            return  # set up only: the foresight jobs run beside the server (and from beat)
        out("Foresight: the nightly jobs run once now, beside the server; their cards (restock, receivable")
        out("at risk, unusual expense) reach the dev inbox in a minute or two.")
        threading.Thread(target=_run_once, args=(run_foresight_jobs, ensure_connector()), daemon=True).start()
        if settings.CELERY_TASK_ALWAYS_EAGER:
            threading.Thread(target=_sweep_forever, args=(10.0,), daemon=True).start()
        from daphne.cli import CommandLineInterface

        quiet = ["-v", "0"] if settings.DEMO_CONSOLE else []  # no access log line per request
        CommandLineInterface().run([*quiet, "-b", host, "-p", str(port), "portal.asgi:application"])
