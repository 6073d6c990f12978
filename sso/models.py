from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
    email = models.EmailField(_("email"), blank=True)
    mobile = models.CharField(_("mobile"), max_length=32, blank=True)
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
    """A card-link token that has been exchanged for a session. Its jti can never be used again."""

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


def language_of(user) -> str:
    profile = getattr(user, "profile", None) if user is not None else None
    try:
        return (profile and profile.language) or settings.LANGUAGE_CODE
    except Profile.DoesNotExist:
        return settings.LANGUAGE_CODE


def time_zone_of(user) -> str:
    try:
        profile = user.profile
    except (Profile.DoesNotExist, AttributeError):
        return settings.TIME_ZONE
    return profile.time_zone or settings.TIME_ZONE


def display_name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""
