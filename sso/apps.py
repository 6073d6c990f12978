from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = _("Sign-in and permissions")

    def ready(self) -> None:
        from sso import audit, snapshot
        from sso.permissions import register_action

        # Actions whose objects belong to later apps; listed here so admins can grant them now.
        register_action("receivables.view", _("view receivables"))
        register_action("bot.query", _("ask the chat bot"))
        register_action("groups.create", _("open a group chat for an alert"))
        audit.connect()
        snapshot.connect()
        from sso.models import AccessChange, LinkTokenUse
        from trust.signals import audit_access

        audit_access(AccessChange, LinkTokenUse)
