from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from im import services
from im.models import Delivery, MessageRef


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "topic", "recipient", "platform", "status", "attempts", "last_error", "reason"]
    list_filter = ["status", "platform"]
    search_fields = ["topic", "recipient__username", "dedupe_key"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["resend"]

    @admin.action(description=_("Send dead letters again"))
    def resend(self, request, queryset):
        dead = list(queryset.filter(status=Delivery.Status.DEAD))
        for delivery in dead:
            services.resend(delivery)
        self.message_user(request, _("%d deliveries queued again.") % len(dead), messages.SUCCESS)

    def has_add_permission(self, request):
        return False


@admin.register(MessageRef)
class MessageRefAdmin(admin.ModelAdmin):
    list_display = ["topic", "platform", "message_id", "needs_update", "update_attempts", "update_error", "updated_at"]
    list_filter = ["platform", "needs_update"]
    search_fields = ["topic", "message_id"]
