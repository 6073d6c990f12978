from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = _("Approvals")

    def ready(self) -> None:
        from approvals import cards, policies, schemas, services
        from approvals.kinds import KINDS
        from approvals.models import ApprovalDocument
        from erp.events import register
        from im.cards import register_card_kind
        from sso.authz import register_policy
        from sso.links import register_link_page
        from sso.permissions import register_action, register_document_kind, register_subject
        from widgets.topics import register_topic

        register_action("approvals.view", _("view approval documents"))
        register_action("approvals.decide", _("approve or reject"))
        register_subject(ApprovalDocument, policies.SUBJECT)
        for kind in KINDS.values():
            register_document_kind(kind.code, kind.label)
        register_policy("approvals.view", policies.VIEW)
        register_policy("approvals.decide", policies.DECIDE)
        register("erp.approval.requested", services.handle_approval_requested, schemas.APPROVAL_REQUESTED)
        register("erp.approval.decided", services.handle_approval_decided, schemas.APPROVAL_DECIDED)
        register_card_kind("approval", cards.build, cards.handle_action)
        register_topic("approval", policies.may_subscribe_document)
        # A card link opens one document: its page, panel refetches, decision POST and live topic.
        register_link_page(r"/approvals/(?P<pk>\d+)/", subpaths=("panel/", "decide/"),
                           topics=lambda match: {f"approval.{match['pk']}"})
        register_topic("inbox", policies.may_subscribe_inbox)
