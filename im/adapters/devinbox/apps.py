from django.apps import AppConfig


class DevInboxConfig(AppConfig):
    name = "im.adapters.devinbox"
    label = "devinbox"
    verbose_name = "Dev inbox (IM simulator)"

    def ready(self) -> None:
        from django.conf import settings

        from sso.authz import Verdict
        from widgets.topics import register_topic

        def may_watch_inbox(user, ident: str) -> Verdict:
            # The dev inbox is a simulator of everyone's phone: open to all while enabled, never in
            # production (DEV_INBOX_ENABLED off).
            return Verdict(settings.DEV_INBOX_ENABLED, "dev inbox")

        register_topic("devinbox", may_watch_inbox)
