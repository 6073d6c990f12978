from django.core.management.base import BaseCommand

from portal.demo import DEMO_PASSWORD, setup_demo


class Command(BaseCommand):
    help = "Seed the demo ERP and link demo users (idempotent)."

    def handle(self, *args, **options):
        summary = setup_demo()
        self.stdout.write(f"demo users (password {DEMO_PASSWORD!r}): " + ", ".join(u[0] for u in summary.users))
        self.stdout.write(f"announced {summary.announced} waiting documents through the intake")
