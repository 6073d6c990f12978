from django.contrib import admin

from sso.models import ErpIdentity, LinkTokenUse, Profile


@admin.register(ErpIdentity)
class ErpIdentityAdmin(admin.ModelAdmin):
    list_display = ["erp_login", "connector", "user", "roles"]
    list_filter = ["connector"]
    search_fields = ["erp_login", "user__username", "user__first_name"]
    autocomplete_fields = ["user"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "language", "time_zone"]


@admin.register(LinkTokenUse)
class LinkTokenUseAdmin(admin.ModelAdmin):
    list_display = ["used_at", "user", "target", "jti"]
    search_fields = ["user__username", "target"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
