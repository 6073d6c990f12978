from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from boards import guests
from boards.models import BoardActivity, GuestPass


@admin.register(GuestPass)
class GuestPassAdmin(admin.ModelAdmin):
    """Who holds a pass to which group's board; never the code (only its HMAC is stored, and not shown)."""

    list_display = ["name", "email", "group", "redeemed_at", "expires_at", "revoked_at", "revoked_reason"]
    list_filter = ["revoked_reason"]
    search_fields = ["name", "email", "group__name"]
    exclude = ["code_digest", "nonce"]
    readonly_fields = ["group", "member", "name", "email", "code_expires_at", "failed_attempts", "redeemed_at",
                       "expires_at", "revoked_at", "revoked_reason", "invited_by"]
    actions = ["revoke_passes"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # passes come with the group's external members (boards.signals)

    @admin.action(description=_("Revoke the selected guest passes"))
    def revoke_passes(self, request: HttpRequest, queryset) -> None:
        count = guests.revoke(queryset, "revoked by an administrator")
        self.message_user(request, _("%(count)s passes revoked.") % {"count": count}, messages.SUCCESS)


@admin.register(BoardActivity)
class BoardActivityAdmin(admin.ModelAdmin):
    list_display = ["created_at", "group", "actor_name", "action", "object_ref", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_name", "object_ref", "group__name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a record of what was done, kept and destroyed by retention only
