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
    options = forms.JSONField(
        label=_("options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        help_text=_("JSON. ERPNext: document types and workflow actions; generic: the read and decide calls and "
                    "the field mappings (docs/integration.md). Empty for Tryton and Odoo."),
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
        fields = ["base_url", "database", "login", "password", "poll_interval", "event_types", "options", "cursor"]

    def clean(self) -> dict:
        """What each kind needs, said per field (the inline does not know the kind before the parent
        form is valid, so an unknown kind checks nothing here)."""
        cleaned = super().clean()
        cleaned["options"] = cleaned.get("options") or {}
        try:
            kind = self.instance.connector.kind
        except Connector.DoesNotExist:
            return cleaned
        has_password = bool(cleaned.get("password") or self.instance.password_encrypted)
        required = {
            "tryton": {"database": _("the Tryton database name"), "login": _("the Tryton login")},
            "odoo": {"database": _("the Odoo database name"), "login": _("the Odoo login")},
            "erpnext": {"login": _("the API key of the ERPNext user")},
        }.get(kind, {})
        for name, what in required.items():
            if not cleaned.get(name):
                self.add_error(name, _("Required for %(kind)s: %(what)s.") % {"kind": kind, "what": what})
        if kind in {"tryton", "odoo", "erpnext"} and not has_password:
            self.add_error("password", _("Required for %(kind)s (Odoo: the API key; ERPNext: the API secret).")
                           % {"kind": kind})
        validate = {
            "generic": "erp.connectors.generic.config.parse_config",
            "erpnext": "erp.connectors.erpnext.connector.parse_options",
        }.get(kind)
        if validate:
            from django.utils.module_loading import import_string

            try:
                import_string(validate)(cleaned["options"])
            except ValueError as exc:
                self.add_error("options", str(exc))
        return cleaned

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


class ConnectorForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("kind"), help_text=_("Which connector module talks to it."))

    class Meta:
        model = Connector
        fields = ["slug", "name", "kind", "enabled", "webhook_secret"]

    def __init__(self, *args, **kwargs) -> None:
        from erp.connectors import CONNECTOR_CLASSES

        super().__init__(*args, **kwargs)
        kinds = list(CONNECTOR_CLASSES)
        if self.instance.kind and self.instance.kind not in kinds:  # a kind this code base dropped: keep it
            kinds.append(self.instance.kind)
        self.fields["kind"].choices = [(kind, kind) for kind in kinds]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    list_display = ["name", "slug", "kind", "enabled", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["intake_url"]
    inlines = [ConnectorSettingsInline]
    actions = ["test_connection"]

    @admin.action(description=_("Test connection (log in, list what the account may do)"))
    def test_connection(self, request, queryset) -> None:
        from erp.connectors.report import connection_report

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
    list_display = ["received_at", "connector", "type", "event_id", "subject", "status", "attempts", "error"]
    list_filter = ["connector", "type", "status"]
    search_fields = ["event_id", "webhook_id", "subject"]
    date_hierarchy = "received_at"
    actions = ["retry_handling"]

    @admin.action(description=_("Retry handling of the selected failed events"))
    def retry_handling(self, request, queryset):
        from erp.handling import retry

        count = retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(n)d event(s) queued for handling again.") % {"n": count})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
