from django.apps import AppConfig
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = _("Approvals")

    def ready(self) -> None:
        from approvals import cards, held, policies, requeue, schemas, selectors, services, subjects
        from approvals.kinds import KINDS
        from approvals.models import ApprovalDocument, Decision
        from approvals.tasks import write_back
        from erp.events import register, register_many
        from erp.handling import register_batch_context
        from erp.subjects import register_subject_kind
        from im.cards import register_card_kind
        from portal.tasks import register_requeuer
        from sso.authz import register_policy
        from sso.links import register_link_page
        from sso.permissions import register_action, register_constraint_fields, register_document_kind
        from trust.selectors import register_export
        from trust.signals import audit_decisions
        from widgets.topics import register_topic

        register_action("approvals.view", _("view approval documents"))
        register_action("approvals.decide", _("approve or reject"))
        register_constraint_fields(ApprovalDocument, policies.CONSTRAINT_FIELDS)
        for kind in KINDS.values():
            register_document_kind(kind.code, kind.label)
        register_policy("approvals.view", policies.VIEW)
        register_policy("approvals.decide", policies.DECIDE)
        register("erp.approval.requested", services.handle_approval_requested, schemas.APPROVAL_REQUESTED)
        register_many("erp.approval.requested", services.handle_approval_requested_many)
        # Outermost: the documents a batch wrote are kept until im has sent that batch's cards.
        register_batch_context(held.holding, outermost=True)
        post_save.connect(held.on_document_saved, sender=ApprovalDocument)
        register("erp.approval.decided", services.handle_approval_decided, schemas.APPROVAL_DECIDED)
        register_card_kind("approval", cards.build, cards.handle_action, build_many=cards.build_many)
        # A document changes a few times in its life and people wait for each change: no coalescing.
        register_topic("approval", policies.may_subscribe_document, coalesce=False)
        # A card link opens one document: its page, panel refetches, decision POST and live topic.
        register_link_page(r"/approvals/(?P<pk>\d+)/", subpaths=("panel/", "decide/"),
                           topics=lambda match: {f"approval.{match['pk']}"})
        register_topic("inbox", policies.may_subscribe_inbox)
        register_requeuer("writebacks", requeue.claim_writebacks, write_back)
        register_subject_kind("approval", event_types=("erp.approval.",),
                              from_event=subjects.from_event, from_id=subjects.from_id,
                              from_object=subjects.document_subject,
                              status_label=lambda code: str(ApprovalDocument.STATUS_LABELS.get(code, code)))
        audit_decisions(Decision)
        register_export("decision", selectors.DECISION_EXPORT_FIELDS, selectors.decisions_for_export)

        from sso.services import register_login_linked

        register_login_linked(services.hand_over_documents)
        from approvals.answers import register_bot_intents

        register_bot_intents()  # what the bot answers about approvals
        from approvals import widgets
        from widgets.views import register_widget_page

        register_widget_page("approval/<int:pk>/", widgets.approval, "approval")
        register_widget_page("pending/", widgets.pending, "pending")
