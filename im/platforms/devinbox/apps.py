from django.apps import AppConfig


class DevInboxConfig(AppConfig):
    name = "im.platforms.devinbox"
    label = "devinbox"
    verbose_name = "Dev inbox (IM simulator)"

    def ready(self) -> None:
        from django.conf import settings

        from sso.authz import Verdict
        from widgets.topics import register_socket_viewers, register_topic

        def may_watch_inbox(user, ident: str) -> Verdict:
            # Pushes carry no data, but they tell when a person gets a card: a phone's topic is its
            # owner's (or staff's, as the phone page), a group chat's its members'. A browser that
            # unlocked a phone watches as its owner (phone_viewers below). Never in production.
            from django.contrib.auth import get_user_model

            from im.platforms.devinbox.models import DevInboxGroup

            refused = Verdict(False, "dev inbox: not this browser's phone")
            if not settings.DEV_INBOX_ENABLED or not getattr(user, "is_authenticated", False):
                return refused
            if ident.startswith("group"):
                chat = DevInboxGroup.objects.filter(pk=int(ident[5:])).first() if ident[5:].isdigit() else None
                if chat is not None and (user.is_staff or str(user.pk) in {str(m) for m in chat.members}):
                    return Verdict(True, "dev inbox group member")
                return refused
            if ident == str(user.pk):
                return Verdict(True, "own phone")
            if user.is_staff and ident.isdigit():
                owner = get_user_model().objects.filter(pk=int(ident), is_active=True).first()
                if owner is not None and not owner.is_superuser:
                    return Verdict(True, "staff watches a phone")
            return refused

        def phone_viewers(session) -> list:
            from django.contrib.auth import get_user_model

            from im.platforms.devinbox.adapter import group_topic, inbox_topic
            from im.platforms.devinbox.models import DevInboxGroup
            from im.platforms.devinbox.views import PHONES_KEY

            proved = {int(pk) for pk in session.get(PHONES_KEY, []) if str(pk).isdigit()}
            found = []
            for owner in get_user_model().objects.filter(pk__in=proved, is_active=True):
                topics = {inbox_topic(owner.pk)} | {
                    group_topic(chat.pk) for chat in DevInboxGroup.objects.all()[:100]
                    if str(owner.pk) in {str(m) for m in chat.members}}
                found.append((owner, topics))
            return found

        register_topic("devinbox", may_watch_inbox)
        register_socket_viewers(phone_viewers)

        from im.platforms.devinbox.adapter import PLATFORM
        from im.platforms.devinbox.views import owner_proved_here
        from sso.links import register_platform_proof

        # A card link tapped in a browser that signed in to the recipient's phone is the recipient's
        # tap, as a real IM client's login-free code would prove.
        register_platform_proof(PLATFORM, owner_proved_here)
