from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from trust import retention, selectors
from trust.models import AuditEntry, LegalHold, RetentionPolicy
from trust.services import verify


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: nobody adds, edits or deletes audit entries by hand."""

    list_display = ["seq", "at", "actor_name", "action", "object_type", "object_id", "short_hash"]
    list_filter = ["action", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "object_id", "action", "hash"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    change_list_template = "admin/trust/auditentry/change_list.html"

    @admin.display(description=_("hash"))
    def short_hash(self, obj: AuditEntry) -> str:
        return obj.hash[:12]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def get_urls(self):
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="trust_auditentry_verify"),
            path("export/", self.admin_site.admin_view(self.export_view), name="trust_auditentry_export"),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_staff:
            return HttpResponse(status=403)
        result = verify()
        if result.ok:
            messages.success(request, _("The audit chain verifies: %(n)d entries.") % {"n": result.checked})
        else:
            messages.error(request, _("The audit chain does not verify: %(p)s") % {"p": "; ".join(result.problems[:5])})
        from django.shortcuts import redirect

        return redirect("admin:trust_auditentry_changelist")

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Decisions and deliveries in a date range, as CSV or JSON (staff with view permission)."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        form = ExportForm(request.GET or None)
        if form.is_valid():
            start, end = form.range()
            fmt = form.cleaned_data["format"]
            body = selectors.export_csv(start, end) if fmt == "csv" else selectors.export_json(start, end)
            response = HttpResponse(body, content_type="text/csv" if fmt == "csv" else "application/json")
            name = f"audit-export-{start:%Y%m%d}-{end:%Y%m%d}.{fmt}"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Export for auditors"),
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/trust/export.html", context)


class ExportForm(forms.Form):
    start = forms.DateField(label=_("from"))
    end = forms.DateField(label=_("to (inclusive)"))
    format = forms.ChoiceField(label=_("format"), choices=[("csv", "CSV"), ("json", "JSON")])

    def range(self) -> tuple[dt.datetime, dt.datetime]:
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(self.cleaned_data["start"], dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(self.cleaned_data["end"] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return start, end


class RetentionPolicyForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("kind of record"), choices=())

    class Meta:
        model = RetentionPolicy
        fields = ["kind", "platform", "keep_days", "enabled", "recall_on_platform"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = retention.kind_choices()


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    form = RetentionPolicyForm
    list_display = ["kind", "platform", "keep_days", "enabled", "recall_on_platform", "last_run_at", "last_run_count"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["last_run_at", "last_run_count"]
    actions = ["run_now"]

    @admin.action(description=_("Run retention now (all enabled policies)"))
    def run_now(self, request: HttpRequest, queryset) -> None:
        result = retention.run()
        self.message_user(request, _("Destroyed %(n)d record(s).") % {"n": result.total})


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    list_display = ["__str__", "scope", "reason", "created_by", "created_at", "released_at"]
    list_filter = ["scope", ("released_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["document", "user"]
    readonly_fields = ["created_by", "created_at"]
    actions = ["release"]

    def save_model(self, request: HttpRequest, obj: LegalHold, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Release the selected holds"))
    def release(self, request: HttpRequest, queryset) -> None:
        for hold in queryset.filter(released_at__isnull=True):
            hold.released_at = timezone.now()
            hold.save(update_fields=["released_at"])
