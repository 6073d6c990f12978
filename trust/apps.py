from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrustConfig(AppConfig):
    name = "trust"
    verbose_name = _("Trust: audit, retention, encryption")

    def ready(self) -> None:
        from trust import retention, signals

        signals.connect()
        retention.register_builtin_kinds()
