from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImConfig(AppConfig):
    name = "im"
    verbose_name = _("IM delivery")

    def ready(self) -> None:
        from im import requeue, retention, selectors
        from im.models import Delivery
        from im.platforms.dingtalk.exchange import DingTalkExchange
        from im.platforms.feishu.exchange import FeishuExchange
        from im.platforms.wecom.exchange import WeComExchange
        from im.signals import deliveries_finished
        from im.tasks import send_delivery, update_message
        from portal.tasks import register_requeuer
        from sso.im_login.base import register_exchange
        from trust.retention import register_retention_kind
        from trust.selectors import register_export
        from trust.signals import audit_deliveries

        register_retention_kind(
            "sent_cards", retention.sent_cards_due, retention.sent_cards_destroy,
            label=_("sent cards (deliveries, sent messages, dev inbox)"), per_platform=True,
        )
        register_requeuer("deliveries", requeue.claim_deliveries, send_delivery)
        register_requeuer("card_edits", requeue.claim_card_edits, update_message)
        # Login-free codes: each platform package's exchange (sso.im_login.base never imports them).
        for exchange in (WeComExchange, FeishuExchange, DingTalkExchange):
            register_exchange(exchange)
        audit_deliveries(Delivery, batch_finished=deliveries_finished)
        register_export("delivery", selectors.DELIVERY_EXPORT_FIELDS, selectors.deliveries_for_export)
        from im.direct import send_direct_card
        from sso.links import register_code_sender

        register_code_sender(send_direct_card)
        from portal.observability.hooks import register_lookups

        register_lookups(dedupe_keys_of_topic=lambda topic: Delivery.objects.filter(topic=topic).order_by("-pk")
                         .values_list("dedupe_key", flat=True)[:20])
        from erp.handling import register_batch_context
        from im.services import collect_outbox
        from sso import snapshot

        # One read of the permission stamp for a whole batch and the sending of its cards (outermost, so
        # the send after the commit is inside it): what one batch decides is decided on one stamp.
        register_batch_context(snapshot.pinned)
        # A worker handling a batch of ERP events sends their cards itself, right after the commit.
        register_batch_context(collect_outbox)
