from django.core.management.base import BaseCommand, CommandError

from erp.models import Connector
from sso.services import sync_erp_identities


class Command(BaseCommand):
    help = "Sync ERP accounts and roles into the portal's ERP identities (all connectors, or the named ones)."

    def add_arguments(self, parser):
        parser.add_argument("connectors", nargs="*", help="connector slugs; all when omitted")

    def handle(self, *args, connectors: list[str], **options):
        queryset = Connector.objects.all()
        if connectors:
            queryset = queryset.filter(slug__in=connectors)
            missing = set(connectors) - set(queryset.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"unknown connector: {', '.join(sorted(missing))}")
        for connector in queryset:
            self.stdout.write(str(sync_erp_identities(connector)))
