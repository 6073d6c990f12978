from django.contrib import admin

from im.bot.models import BotExchange


@admin.register(BotExchange)
class BotExchangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "channel", "intent", "source", "text", "duration_ms"]
    list_filter = ["intent", "source", "channel"]
    search_fields = ["text", "answer", "user__username"]
    readonly_fields = [f.name for f in BotExchange._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # a log: written by the bot only
