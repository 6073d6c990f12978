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
            # Pushes carry no data: a phone's refetch shows its cards only to a browser signed in to
            # that phone (views.may_use_phone). Never in production (DEV_INBOX_ENABLED off).
            return Verdict(settings.DEV_INBOX_ENABLED, "dev inbox")

        register_topic("devinbox", may_watch_inbox)

        from im.adapters.devinbox.adapter import PLATFORM
        from im.adapters.devinbox.views import owner_proved_here
        from sso.links import register_platform_proof

        # A card link tapped in a browser that signed in to the recipient's phone is the recipient's
        # tap, as a real IM client's login-free code would prove.
        register_platform_proof(PLATFORM, owner_proved_here)
