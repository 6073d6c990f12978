from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from sso.forms import DelegationForm, ExplainForm, PermissionRuleForm
from sso.models import (
    AccessChange,
    Delegation,
    ErpIdentity,
    ImIdentity,
    LinkDecisionCheck,
    LinkTokenUse,
    OidcSubject,
    PermissionRule,
    Profile,
    UnlinkedImUser,
)


def explain_url(**params: object) -> str:
    """The permission explain page, pre-filled (user, action, object kind and identifier)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse("admin:sso_permissionrule_explain") + (f"?{query}" if query else "")


def explain_link(text: str, **params: object) -> str:
    return format_html('<a class="explain" href="{}">{}</a>', explain_url(**params), text)


def _words(values: list, labels: dict) -> str:
    return "，".join(str(labels.get(v, v)) for v in values or []) or "—"


@admin.register(ErpIdentity)
class ErpIdentityAdmin(admin.ModelAdmin):
    list_display = ["erp_login", "connector", "user", "roles", "department", "synced_at"]
    list_filter = ["connector", "department"]
    search_fields = ["erp_login", "employee", "user__username", "user__first_name"]
    autocomplete_fields = ["user"]


@admin.register(ImIdentity)
class ImIdentityAdmin(admin.ModelAdmin):
    list_display = ["external_id", "platform", "tenant", "user", "display_name", "linked_by", "linked_at"]
    list_filter = ["platform", "linked_by"]
    # email and mobile are encrypted (trust.fields): found by their digest, exactly, not by a part.
    search_fields = ["external_id", "display_name", "user__username", "user__first_name", "user__email"]
    autocomplete_fields = ["user"]

    def get_search_results(self, request, queryset, search_term):
        from sso.im_login.identity import normalize_mobile
        from trust.fields import digest, normalize_email

        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            found |= queryset.filter(email_digest=digest(normalize_email(term)))
            if normalize_mobile(term):
                found |= queryset.filter(mobile_digest=digest(normalize_mobile(term)))
        return found, may_have_duplicates


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "language", "time_zone"]


@admin.register(LinkDecisionCheck)
class LinkDecisionCheckAdmin(admin.ModelAdmin):
    list_display = ["platform", "requirement"]


@admin.register(LinkTokenUse)
class LinkTokenUseAdmin(admin.ModelAdmin):
    list_display = ["used_at", "user", "target", "jti"]
    search_fields = ["user__username", "target"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PermissionRule)
class PermissionRuleAdmin(admin.ModelAdmin):
    form = PermissionRuleForm
    list_display = ["name", "enabled", "actions_words", "roles_words", "connector", "kinds_words", "max_amount",
                    "currency", "explain"]
    list_filter = ["enabled", "connector"]
    search_fields = ["name", "description"]
    filter_horizontal = ["users", "groups"]
    readonly_fields = ["explain"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "actions", "description", "explain"]}),
        (_("Who"), {"fields": ["connector", "erp_roles", "groups", "users"]}),
        (_("On which objects"), {"fields": ["document_kinds", "max_amount", "currency", "projects", "cost_centers",
                                            "warehouses", "customers", "own_department", "own_documents"]}),
    ]

    @admin.display(description=_("actions"))
    def actions_words(self, rule: PermissionRule) -> str:
        from sso.permissions import ACTIONS

        return _words(rule.actions, ACTIONS)

    @admin.display(description=_("ERP roles"))
    def roles_words(self, rule: PermissionRule) -> str:
        return _words(rule.erp_roles, {})

    @admin.display(description=_("document kinds"))
    def kinds_words(self, rule: PermissionRule) -> str:
        return _words(rule.document_kinds, {})

    @admin.display(description=_("explain"))
    def explain(self, rule: PermissionRule) -> str:
        if rule.pk is None:
            return "—"
        return explain_link(_("Explain a permission"), action=(rule.actions or [""])[0])

    def changelist_view(self, request, extra_context=None):
        extra = {"explain_url": explain_url(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def get_urls(self):
        explain = self.admin_site.admin_view(self.explain_view)
        return [path("explain/", explain, name="sso_permissionrule_explain"), *super().get_urls()]

    def explain_view(self, request):
        """Why may (or may not) this user do this action on this object? The rule chain, in words."""
        from sso.authz import authorize

        # A link from a rule, a user or a document pre-fills part of the form: bound (and checked) only
        # once it names a user and an action, so a half-filled link shows no "required" errors.
        complete = bool(request.GET.get("user") and request.GET.get("action"))
        form = ExplainForm(request.GET) if complete else ExplainForm(initial=request.GET.dict())
        verdict = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            verdict = authorize(data["user"], data["action"], data["object"])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Explain a permission"),
            "opts": self.model._meta,
            "form": form,
            "verdict": verdict,
        }
        return TemplateResponse(request, "admin/sso/explain.html", context)


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    form = DelegationForm
    list_display = ["delegator", "delegate", "actions", "starts_at", "ends_at", "reason"]
    list_filter = ["starts_at"]
    search_fields = ["delegator__username", "delegate__username", "reason"]
    autocomplete_fields = ["delegator", "delegate"]


@admin.register(AccessChange)
class AccessChangeAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "change", "model", "object_repr"]  # labels: portal.admin_labels
    list_filter = ["model", "change"]
    search_fields = ["object_repr", "actor_name"]
    readonly_fields = [f.name for f in AccessChange._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UnlinkedImUser)
class UnlinkedImUserAdmin(admin.ModelAdmin):
    """IM sign-ins refused because no portal user is linked: link them with "add IM identity"."""

    list_display = ["external_id", "platform", "tenant", "display_name", "email", "mobile", "reason", "attempts",
                    "last_seen", "link"]
    list_filter = ["platform", "reason"]
    search_fields = ["external_id", "display_name"]  # email and mobile are encrypted
    readonly_fields = [f.name for f in UnlinkedImUser._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("link"))
    def link(self, obj: UnlinkedImUser) -> str:
        query = urlencode({
            "platform": obj.platform, "tenant": obj.tenant, "external_id": obj.external_id,
            "display_name": obj.display_name, "email": obj.email, "mobile": obj.mobile,
        })
        return format_html('<a href="{}?{}">{}</a>', reverse("admin:sso_imidentity_add"), query, _("add IM identity"))


@admin.register(OidcSubject)
class OidcSubjectAdmin(admin.ModelAdmin):
    """Company-account links (OIDC); with OIDC_USER_POLICY=deny, adding one here is how a person gets in."""

    list_display = ["subject", "issuer", "user", "groups", "linked_at", "last_sign_in"]
    list_filter = ["issuer"]
    search_fields = ["subject", "user__username", "user__first_name", "user__email"]
    autocomplete_fields = ["user"]
    readonly_fields = ["groups", "linked_at", "last_sign_in"]


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Django's user admin, plus the way to ask "what may this person do, and why?"."""

    list_display = [*UserAdmin.list_display, "explain"]
    readonly_fields = [*UserAdmin.readonly_fields, "explain"]
    fieldsets = [*UserAdmin.fieldsets, (_("Permissions in the portal"), {"fields": ["explain"]})]

    @admin.display(description=_("permissions"))
    def explain(self, user) -> str:
        if user.pk is None:
            return "—"
        return explain_link(_("Explain a permission"), user=user.pk)
