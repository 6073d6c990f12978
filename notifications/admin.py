"""Rules edited in admin, with "test with a sample event": who would be told, what each would see, why."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from erp.models import Connector
from notifications.engine import preview
from notifications.models import ChatGroup, ChatGroupMember, GroupPost, Notification, NotificationRule

SAMPLES = {
    "erp.approval.requested": {"document": {"id": "PR-2026-0042"}, "approvers": ["li.si"]},
    "erp.approval.decided": {"document": {"id": "PR-2026-0042"}, "outcome": "approved", "decided_by": "li.si"},
    "erp.stock.changed": {"sku": "SKU-123", "warehouse": "SH"},
    "erp.order.status_changed": {"order": {"id": "SO-2026-0816"}},
    "erp.receivable.changed": {"receivable": {"id": "INV-2026-0288"}},
}


@admin.register(NotificationRule)
class NotificationRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "event_type", "priority", "enabled", "test_link"]
    list_filter = ["event_type", "enabled", "priority"]
    filter_horizontal = ["users", "escalate_to_users"]
    actions = ["fast_forward"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "event_type", "priority", "description"]}),
        (gettext_lazy("Conditions"), {"fields": ["min_amount", "unusual_factor", "kinds", "statuses", "warehouses",
                                                 "projects", "customers", "urgent_only", "below_safety_only",
                                                 "delayed_only"]}),
        (gettext_lazy("Recipients"), {"fields": ["to_approvers", "erp_roles", "users", "to_owner", "to_sales_rep",
                                                 "chat_group", "to_customer_group", "notice_without_access",
                                                 "platforms", "initial_card"]}),
        (gettext_lazy("Card"), {"fields": ["title_zh", "title_en", "body_zh", "body_en", "fields", "group_fields",
                                           "discuss_action"]}),
        (gettext_lazy("Group chat"), {"fields": ["group_mode", "group_roles", "group_supplier_contact", "pin_widget",
                                                 "attach_open_orders", "archive_when_cleared", "retention_days"]}),
        (gettext_lazy("Board"), {"fields": ["member_actions", "guest_actions", "guest_pass_hours"]}),
        (gettext_lazy("Follow-ups"), {"fields": ["remind_after_hours", "escalate_after_hours", "escalate_to_roles",
                                                 "escalate_to_users", "quiet_start", "quiet_end", "working_days",
                                                 "digest", "digest_minutes"]}),
    ]

    @admin.action(description=gettext_lazy("Demo: run follow-ups as if 25 hours had passed"))
    def fast_forward(self, request: HttpRequest, queryset) -> None:
        # The demo cannot wait a day for reminders and escalations; production runs the beat tick.
        from datetime import timedelta

        from django.utils import timezone

        from notifications.services import tick

        done = tick(timezone.now() + timedelta(hours=25))
        messages.info(request, _("Follow-ups: %(followups)s, held cards released: %(released)s, digests: %(digests)s")
                      % done)

    @admin.display(description=gettext_lazy("test"))
    def test_link(self, rule: NotificationRule) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:notifications_rule_test", args=[rule.pk]),
                           _("test with a sample event"))

    def get_urls(self):
        return [path("<int:pk>/test/", self.admin_site.admin_view(self.test_view), name="notifications_rule_test"),
                *super().get_urls()]

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        rule = get_object_or_404(NotificationRule, pk=pk)
        if not self.has_view_permission(request, rule):
            return HttpResponse(status=403)
        default = json.dumps(SAMPLES.get(rule.event_type, {}), ensure_ascii=False, indent=2)
        sample = request.POST.get("sample") or default
        connectors = Connector.objects.order_by("slug")
        connector = connectors.filter(slug=request.POST.get("connector", "")).first() or connectors.first()
        outcome = None
        if request.method == "POST" and connector is not None:
            try:
                data = json.loads(sample)
                if not isinstance(data, dict):
                    raise ValueError
            except ValueError:
                messages.error(request, _("The sample must be a JSON object."))
            else:
                outcome = preview(rule, connector, rule.event_type, data)
        return TemplateResponse(request, "admin/notifications/test_rule.html", {
            **self.admin_site.each_context(request), "rule": rule, "sample": sample, "outcome": outcome,
            "connectors": connectors, "connector": connector, "opts": self.model._meta,
            "title": _("Test “%s” with a sample event") % rule.name,
        })


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "rule", "kind", "recipient", "subject_topic", "status", "reason"]
    list_filter = ["kind", "status", "rule"]
    search_fields = ["subject_topic", "reason", "recipient__username"]
    readonly_fields = [f.name for f in Notification._meta.fields]


class MemberInline(admin.TabularInline):
    model = ChatGroupMember
    extra = 0


class PostInline(admin.TabularInline):
    model = GroupPost
    extra = 0
    readonly_fields = ["idempotency_key", "reason", "card", "message_id", "error", "created_at"]


@admin.register(ChatGroup)
class ChatGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "purpose", "state", "customer", "created_by_rule", "created_at", "retain_until"]
    list_filter = ["platform", "purpose", "state"]
    inlines = [MemberInline, PostInline]
    readonly_fields = ["chat_id", "idempotency_key", "archived_at", "error"]
