from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImConfig(AppConfig):
    name = "im"
    verbose_name = _("IM delivery")

    def ready(self) -> None:
        from django.utils.translation import gettext_lazy as _

        from im import retention
        from trust.retention import register_retention_kind

        register_retention_kind(
            "sent_cards", retention.sent_cards_due, retention.sent_cards_destroy,
            label=_("sent cards (deliveries, sent messages, dev inbox)"), per_platform=True,
        )
