from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from erp.models import Connector, ConnectorSettings, InboundEvent


class ConnectorSettingsForm(forms.ModelForm):
    """The password is write-only: it is encrypted on save and never shown again."""

    base_url = forms.URLField(label=_("base URL"), assume_scheme="https", help_text=_("e.g. https://erp.example.com"))
    password = forms.CharField(
        label=_("password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted. Leave empty to keep the current one."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("event types to emit"),
        choices=ConnectorSettings.EVENT_TYPE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: requested, decided and stock changes."),
    )

    class Meta:
        model = ConnectorSettings
        fields = ["base_url", "database", "login", "password", "poll_interval", "event_types", "cursor"]

    def save(self, commit: bool = True) -> ConnectorSettings:
        settings = super().save(commit=False)
        if self.cleaned_data.get("password"):
            settings.set_password(self.cleaned_data["password"])
        if commit:
            settings.save()
        return settings


class ConnectorSettingsInline(admin.StackedInline):
    model = ConnectorSettings
    form = ConnectorSettingsForm
    can_delete = True
    extra = 0
    max_num = 1
    readonly_fields = ["last_polled_at", "last_poll_error"]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["intake_url"]
    inlines = [ConnectorSettingsInline]
    actions = ["test_connection"]

    @admin.action(description=_("Test connection (log in, list what the account may do)"))
    def test_connection(self, request, queryset) -> None:
        from erp.connectors.tryton.admin import connection_report

        for connector in queryset:
            ok, lines = connection_report(connector)
            self.message_user(
                request,
                f"{connector}: " + "; ".join(lines),
                level=messages.SUCCESS if ok else messages.WARNING,
            )

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
