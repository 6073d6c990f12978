from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImConfig(AppConfig):
    name = "im"
    verbose_name = _("IM delivery")

    def ready(self) -> None:
        from erp.handling import register_batch_context
        from im.services import collect_outbox

        # A worker handling a batch of ERP events sends their cards itself, right after the commit.
        register_batch_context(collect_outbox)
