from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from bot import language_model, vocabulary
from bot.models import BotExchange, ModelBackend


@admin.register(BotExchange)
class BotExchangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "channel", "intent", "source", "text", "duration_ms"]
    list_filter = ["intent", "source", "channel"]
    search_fields = ["text", "answer", "user__username"]
    readonly_fields = [f.name for f in BotExchange._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # a log: written by the bot only


# What the "try it" action asks: the parser understands it, so a working backend must pick "stock".
PROBE_QUESTION = "How many of item SKU-123 are left in stock?"


@admin.register(ModelBackend)
class ModelBackendAdmin(admin.ModelAdmin):
    list_display = ["model_name", "base_url", "enabled", "timeout", "updated_at"]
    actions = ["try_backend"]

    def has_add_permission(self, request) -> bool:
        return not ModelBackend.objects.exists()  # one backend

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # The stored key is never shown again; an empty field keeps it.
        form.base_fields["api_key"].widget = forms.PasswordInput(render_value=False)
        form.base_fields["api_key"].required = False
        return form

    def save_model(self, request, obj, form, change) -> None:
        if change and not form.cleaned_data.get("api_key"):
            obj.api_key = ModelBackend.objects.get(pk=obj.pk).api_key
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Ask the backend a test question"))
    def try_backend(self, request, queryset) -> None:
        for row in queryset:
            backend = language_model.BackendConfig(row.base_url, row.model_name, row.api_key, row.timeout)
            chosen = language_model.choose(PROBE_QUESTION, vocabulary.current(), backend)
            if chosen is None:
                self.message_user(request, _("%(backend)s gave no usable answer (see the log for why).")
                                  % {"backend": row}, messages.ERROR)
            else:
                self.message_user(request, _("%(backend)s answered: %(intent)s %(entities)s")
                                  % {"backend": row, "intent": chosen[0], "entities": chosen[1]}, messages.SUCCESS)
