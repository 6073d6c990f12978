from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from approvals import services
from approvals.models import ApprovalAssignment, ApprovalDocument, ApprovalLine, Decision, HistoryEntry
from sso.admin import explain_link


class LineInline(admin.TabularInline):
    model = ApprovalLine
    extra = 0


class AssignmentInline(admin.TabularInline):
    model = ApprovalAssignment
    extra = 0


class HistoryInline(admin.TabularInline):
    model = HistoryEntry
    extra = 0
    readonly_fields = ["at", "actor_name", "action", "note"]
    can_delete = False


@admin.register(ApprovalDocument)
class ApprovalDocumentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "kind", "amount", "currency", "status", "urgent", "created_at",
                    "explain"]
    list_filter = ["status", "kind", "connector", "urgent"]
    search_fields = ["external_id", "title", "requester_login", "project"]
    inlines = [LineInline, AssignmentInline, HistoryInline]
    date_hierarchy = "created_at"
    readonly_fields = ["explain"]

    @admin.display(description=_("permissions"))
    def explain(self, document: ApprovalDocument) -> str:
        """Who may see or decide this document, and why: the explain page with it filled in."""
        if document.pk is None:
            return "—"
        return explain_link(_("Explain a permission"), action="approvals.decide",
                            kind=ApprovalDocument._meta.label_lower, identifier=document.external_id)


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = [
        "document", "outcome", "actor", "via", "created_at", "writeback_status", "writeback_attempts",
        "writeback_error",
    ]
    list_filter = ["writeback_status", "outcome", "via"]
    search_fields = ["document__external_id", "actor__username", "idempotency_key"]
    readonly_fields = [f.name for f in Decision._meta.fields]
    actions = ["retry_writeback"]

    @admin.action(description=_("Retry the writeback of failed decisions"))
    def retry_writeback(self, request, queryset):
        failed = queryset.filter(writeback_status=Decision.Writeback.FAILED)
        for decision in failed:
            services.retry_writeback(decision)
        self.message_user(request, _("%d writebacks queued again.") % failed.count(), messages.SUCCESS)

    def has_add_permission(self, request):
        return False
