from django.contrib import admin

from erp.models import Connector, InboundEvent


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["intake_url"]

    @admin.display(description="event intake URL")
    def intake_url(self, obj: Connector) -> str:
        from django.conf import settings

        return f"{settings.PORTAL_BASE_URL}/api/erp/{obj.slug}/events" if obj.pk else "-"


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "connector", "type", "event_id", "subject", "status"]
    list_filter = ["connector", "type", "status"]
    search_fields = ["event_id", "webhook_id", "subject"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
