from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxLengthValidator, validate_email
from django.db import models
from django.utils.translation import gettext_lazy as _

from trust.fields import DigestField, EncryptedTextField


class ErpIdentity(models.Model):
    """Links a portal user to their login (and roles) in one ERP."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="erp_identities")
    connector = models.ForeignKey("erp.Connector", on_delete=models.CASCADE, related_name="identities")
    erp_login = models.CharField(_("ERP login"), max_length=150)
    roles = models.JSONField(_("ERP roles"), default=list, blank=True)
    employee = models.CharField(_("employee"), max_length=150, blank=True)
    department = models.CharField(_("department"), max_length=150, blank=True)
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ERP identity")
        verbose_name_plural = _("ERP identities")
        constraints = [
            models.UniqueConstraint(fields=["connector", "erp_login"], name="sso_erp_login_once_per_connector"),
        ]

    def __str__(self) -> str:
        return f"{self.erp_login}@{self.connector.slug} → {self.user}"


class ImIdentity(models.Model):
    """Links a portal user to their account on one IM platform (one tenant of it).

    ``external_id`` is what the platform calls the user: a WeCom userid, a Feishu open_id, a Matrix
    user id, a Slack member id. Messages are addressed with it; login-free codes resolve to it.
    """

    class LinkedBy(models.TextChoices):
        ADMIN = "admin", _("admin")
        EMAIL = "email", _("email")
        MOBILE = "mobile", _("mobile")
        SIGN_IN = "sign_in", _("sign-in")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="im_identities")
    platform = models.CharField(_("platform"), max_length=30)
    tenant = models.CharField(_("tenant"), max_length=150, blank=True, help_text=_("corp id, workspace or server"))
    external_id = models.CharField(_("user id on the platform"), max_length=255)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    # Personal data: encrypted at rest (trust.fields); found by the keyed digests below, never by value.
    email = EncryptedTextField(_("email"), blank=True, validators=[validate_email])
    mobile = EncryptedTextField(_("mobile"), blank=True, validators=[MaxLengthValidator(32)])
    email_digest = DigestField(source="email", normalize="trust.fields.normalize_email")
    mobile_digest = DigestField(source="mobile", normalize="sso.im_login.identity.normalize_mobile")
    linked_by = models.CharField(_("linked by"), max_length=10, choices=LinkedBy.choices, default=LinkedBy.ADMIN)
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("IM identity")
        verbose_name_plural = _("IM identities")
        constraints = [
            models.UniqueConstraint(fields=["platform", "tenant", "external_id"], name="sso_im_identity_once"),
        ]
        indexes = [models.Index(fields=["user", "platform"])]

    def __str__(self) -> str:
        return f"{self.platform}:{self.tenant}/{self.external_id} → {self.user}"


class LinkTokenUse(models.Model):
    """A card-link token that has been exchanged for a link session (``sso.links``). Its jti can never be
    used again."""

    jti = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    target = models.CharField(max_length=200)
    used_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("used link token")
        verbose_name_plural = _("used link tokens")
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"{self.jti} ({self.user})"


class LinkDecisionCheck(models.Model):
    """Per IM platform: what a decision made through a card link's link session needs first.

    Platforms with login-free identity (WeCom, Feishu, DingTalk, Slack) never send link tokens; the
    rest (the generic webhook, Matrix, Agora, the dev inbox) do, and a link can be forwarded. A platform
    without a row asks for the recipient's password.
    """

    class Check(models.TextChoices):
        PASSWORD = "password", _("the recipient's portal password")
        CODE = "code", _("a one-time code sent to the recipient's IM")
        SIGNIN = "signin", _("a full sign-in (no deciding from a link)")

    platform = models.CharField(_("platform"), max_length=32, unique=True)
    requirement = models.CharField(_("check before deciding"), max_length=16, choices=Check.choices,
                                   default=Check.PASSWORD)

    class Meta:
        verbose_name = _("card-link decision check")
        verbose_name_plural = _("card-link decision checks")
        ordering = ["platform"]

    def __str__(self) -> str:
        return f"{self.platform}: {self.get_requirement_display()}"

    @classmethod
    def check_for(cls, platform: str) -> str:
        row = cls.objects.filter(platform=platform).first()
        return row.requirement if row is not None else cls.Check.PASSWORD


class Profile(models.Model):
    """Per-user language and time zone for pages, cards and bot answers."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)


def language_of(user, default: str | None = None) -> str:
    """The user's chosen language, else ``default`` (the portal's, ``LANGUAGE_CODE``, unless given):
    a page passes "" to keep the browser's choice, a card has no browser to ask."""
    fallback = settings.LANGUAGE_CODE if default is None else default
    try:
        profile = getattr(user, "profile", None) if user is not None else None
        return (profile and profile.language) or fallback
    except Profile.DoesNotExist:
        return fallback


def time_zone_of(user) -> str:
    try:
        profile = user.profile
    except (Profile.DoesNotExist, AttributeError):
        return settings.TIME_ZONE
    return profile.time_zone or settings.TIME_ZONE


def display_name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


class PermissionRule(models.Model):
    """Grants ``actions`` to the users it names, the members of its groups, and everyone holding one
    of its ERP roles; constraints narrow which objects it covers (all must hold; empty means any).

    Modelled on NetBox's object permissions: actions plus constraints, assigned to users and groups,
    applied both to single objects (``authorize``) and as restricted querysets (``restrict``).
    """

    name = models.CharField(_("name"), max_length=150)
    enabled = models.BooleanField(_("enabled"), default=True)
    actions = models.JSONField(_("actions"), default=list, help_text=_("e.g. approvals.view, approvals.decide"))
    # Who: any of these.
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="permission_rules")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="permission_rules")
    connector = models.ForeignKey(
        "erp.Connector", on_delete=models.CASCADE, null=True, blank=True, related_name="permission_rules",
        help_text=_("the ERP whose roles are meant; empty means any connector"),
    )
    erp_roles = models.JSONField(_("ERP roles"), default=list, blank=True)
    # On what: all of these that are set.
    document_kinds = models.JSONField(
        _("document kinds"), default=list, blank=True,
        help_text=_("e.g. purchase_requisition, expense_claim; empty means every kind"),
    )
    max_amount = models.DecimalField(_("amount at most"), max_digits=16, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency of the limit"), max_length=3, blank=True, default="CNY")
    projects = models.JSONField(_("projects"), default=list, blank=True)
    cost_centers = models.JSONField(_("cost centers"), default=list, blank=True)
    warehouses = models.JSONField(_("warehouses"), default=list, blank=True)
    customers = models.JSONField(_("customers"), default=list, blank=True)
    own_department = models.BooleanField(_("own department only"), default=False)
    own_documents = models.BooleanField(_("own documents only"), default=False)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("permission rule")
        verbose_name_plural = _("permission rules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delegation(models.Model):
    """``delegator`` lets ``delegate`` act for them (out of office) for some actions and dates.
    Decisions made this way record both names."""

    delegator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given")
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    actions = models.JSONField(_("actions"), default=list)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("delegation")
        verbose_name_plural = _("delegations")
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="sso_delegation_dates"),
            models.CheckConstraint(condition=~models.Q(delegate=models.F("delegator")), name="sso_delegation_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.delegator} → {self.delegate}"


class AccessChange(models.Model):
    """One change to who may do what: a permission rule, a delegation or an identity link, with the
    values before and after. Written by signals, so admin, commands and code paths are all covered."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True)
    model = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50)
    object_repr = models.CharField(max_length=200)
    change = models.CharField(max_length=10)  # created, updated, deleted
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("access change")
        verbose_name_plural = _("access changes")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.change} {self.model} {self.object_repr}"


class UnlinkedImUser(models.Model):
    """Someone an IM platform vouched for who is linked to no portal user: their sign-in was refused.

    Admins link them by adding an IM identity (``ImIdentity``); the row goes away at their next
    sign-in. Kept so that a refused person is never silently skipped.
    """

    platform = models.CharField(_("platform"), max_length=30)
    tenant = models.CharField(_("tenant"), max_length=150, blank=True)
    external_id = models.CharField(_("user id on the platform"), max_length=255)
    display_name = models.CharField(_("display name"), max_length=150, blank=True)
    email = EncryptedTextField(_("email"), blank=True, validators=[validate_email])
    mobile = EncryptedTextField(_("mobile"), blank=True, validators=[MaxLengthValidator(32)])
    reason = models.CharField(_("reason"), max_length=20, help_text=_("unknown, ambiguous or inactive"))
    attempts = models.PositiveIntegerField(_("attempts"), default=1)
    first_seen = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), auto_now_add=True)

    class Meta:
        verbose_name = _("unlinked IM user")
        verbose_name_plural = _("unlinked IM users")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "tenant", "external_id"], name="sso_unlinked_im_user_once"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.tenant}/{self.external_id}"


class OidcSubject(models.Model):
    """Links a portal user to their account at an OpenID Connect provider: (issuer, subject), made at
    their first company sign-in (``sso.oidc``, ``OIDC_USER_POLICY``). Later sign-ins find the user here."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_subjects")
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    groups = models.JSONField(_("groups from the provider"), default=list, blank=True)
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    last_sign_in = models.DateTimeField(_("last sign-in"), null=True, blank=True)

    class Meta:
        verbose_name = _("company account link")
        verbose_name_plural = _("company account links")
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_oidc_subject_once"),
            models.UniqueConstraint(fields=["user", "issuer"], name="sso_oidc_one_subject_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.issuer} {self.subject} → {self.user}"
