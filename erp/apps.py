from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErpConfig(AppConfig):
    name = "erp"
    verbose_name = _("ERP connectors and events")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from erp import keys, requeue, retention
        from erp.events import compile_validators, handler_for
        from erp.models import Connector
        from erp.selectors import forget_intake_connectors
        from erp.tasks import handle_events
        from portal.observability.hooks import register_lookups
        from portal.tasks import register_requeuer
        from portal.warmup import register as register_warm_up
        from trust.crypto import register_rotation
        from trust.retention import delete_rows, register_retention_kind

        register_retention_kind("event_payloads", retention.event_payloads_due, delete_rows,
                                label=_("ERP event payloads"))
        register_rotation("erp.ConnectorSettings", keys.rotate_credentials)
        register_requeuer("events", requeue.claim_received_events, handle_events)
        register_warm_up(compile_validators)  # at process start, not on each type's first event
        post_save.connect(forget_intake_connectors, sender=Connector, dispatch_uid="erp-intake-connectors")
        post_delete.connect(forget_intake_connectors, sender=Connector, dispatch_uid="erp-intake-connectors-gone")
        register_lookups(event_type_known=lambda event_type: handler_for(event_type) is not None,
                         connector_known=lambda slug: Connector.objects.filter(slug=slug).exists())
