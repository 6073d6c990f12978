"""Make and submit a purchase requisition in the demo's Tryton, as zhang.san would in Tryton's client."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create and submit a purchase requisition in the Tryton started by `make demo ERP=tryton`."

    def add_arguments(self, parser):
        parser.add_argument("--description", default="备件")
        parser.add_argument("--qty", type=int, default=2)
        parser.add_argument("--price", default="880.50")

    def handle(self, *args, description: str, qty: int, price: str, **options):
        from erp.connectors.tryton.demo import new_requisition
        from erp.connectors.tryton.testing import TrytonServer

        info = Path(settings.VAR_DIR).resolve() / "tryton-demo" / "server.json"
        if not info.exists():
            raise CommandError("no demo Tryton: start it with `make demo ERP=tryton` first")
        data = json.loads(info.read_text())
        server = TrytonServer(base_url=data["base_url"], database=data["database"], seed=data["seed"])
        number = new_requisition(server, description=description, qty=qty, price=price)
        self.stdout.write(f"requisition {number} waits for approval; the portal picks it up at the next poll")
