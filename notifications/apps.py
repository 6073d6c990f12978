from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications and group chats")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from approvals.models import Decision
        from erp.events import register_post_hook
        from im.cards import register_card_kind
        from notifications import cards, engine, groups, retention
        from sso.permissions import ACTIONS, register_action
        from trust.retention import register_retention_kind

        # Runs after each event's own handler, in the intake's transaction: the mirror is up to date.
        register_post_hook(engine.on_event)
        # The enabled rules of a type are kept per process (engine.rules_for_event): a change bumps the stamp.
        from notifications.models import NotificationRule
        from sso import snapshot

        snapshot.watch(NotificationRule)
        # A decision taken in the portal is not an ERP event; rules on erp.approval.decided see it too.
        post_save.connect(engine.on_decision_saved, sender=Decision, dispatch_uid="notifications.decision")
        register_card_kind("notice", cards.build, cards.handle_action)
        groups.register_operations()  # group opens, posts and archives are outbox rows
        if "groups.create" not in ACTIONS:
            register_action("groups.create", _("open group chats from cards"))
        register_retention_kind(
            "group_chats", retention.group_posts_due, retention.group_posts_destroy,
            label=_("group-chat records (cards and widgets posted into groups)"), per_platform=True,
        )
