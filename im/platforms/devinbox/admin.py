from django.contrib import admin

from im.platforms.devinbox.models import DevInboxMessage


@admin.register(DevInboxMessage)
class DevInboxMessageAdmin(admin.ModelAdmin):
    list_display = ["pk", "recipient", "created_at", "updated_at", "revision"]
    list_filter = ["recipient"]
