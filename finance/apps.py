from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FinanceConfig(AppConfig):
    name = "finance"
    verbose_name = _("Receivables")

    def ready(self) -> None:
        from django.db.models import Q

        from erp.events import register
        from erp.subjects import register_subject_kind
        from finance import policies, services, subjects
        from finance.models import Receivable
        from sso.permissions import ConstraintFields, register_constraint_fields
        from sso.selectors import erp_logins
        from widgets.topics import register_topic

        register("erp.receivable.changed", services.handle_receivable_changed, services.RECEIVABLE_CHANGED)
        register_constraint_fields(
            Receivable,
            ConstraintFields(
                amount="amount",
                currency="currency",
                project="project",
                customer="customer",
                own=lambda user: Q(sales_rep_login__in=erp_logins(user)),
                is_own=lambda user, receivable: receivable.sales_rep_login in erp_logins(user),
            ),
        )
        register_topic("receivables", policies.may_subscribe_receivables)
        register_subject_kind("receivable", event_types=("erp.receivable.changed",),
                              from_event=subjects.from_event, from_id=subjects.from_id)

        from finance.answers import register_bot_intents

        register_bot_intents()  # what the bot answers about finance
        from finance import widgets
        from widgets.views import register_widget_page

        register_widget_page("receivables/<str:scope>/<str:name>/", widgets.receivables, "receivables")
