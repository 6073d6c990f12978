from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ForesightConfig(AppConfig):
    name = "foresight"
    verbose_name = _("Foresight")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models import Q

        from approvals.cards import register_card_fields
        from erp.events import register_post_hook
        from foresight import cards, hooks
        from foresight.models import ReceivableRisk, RestockSuggestion
        from im.cards import register_card_kind
        from sso.permissions import ConstraintFields, register_action, register_constraint_fields
        from sso.selectors import erp_logins

        register_action("foresight.requisition", _("create purchase requisitions from restock suggestions"))
        # Suggestions and risks answer the same rules as the stock and receivables they are about.
        register_constraint_fields(RestockSuggestion, ConstraintFields(warehouse="warehouse"))
        register_constraint_fields(ReceivableRisk, ConstraintFields(
            amount="amount", currency="currency", project="project", customer="customer",
            own=lambda user: Q(sales_rep_login__in=erp_logins(user)),
            is_own=lambda user, risk: risk.sales_rep_login in erp_logins(user),
        ))
        register_card_kind("restock", cards.build_restock, cards.handle_restock_action)
        register_card_kind("riskalert", cards.build_risk_alert, cards.handle_risk_action)
        register_card_kind("riskdigest", cards.build_risk_digest)
        register_card_fields(cards.expense_flag_fields)
        register_post_hook(hooks.on_event)
        from foresight.selectors import forecasts_of
        from inventory.widgets import register_stock_forecasts

        register_stock_forecasts(forecasts_of)  # the stock widget's chart shows where demand is heading
