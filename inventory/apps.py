from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("Inventory and orders")

    def ready(self) -> None:
        from django.db.models import Q

        from inventory import policies
        from inventory.models import SalesOrder, StockLevel, order_status_label
        from sso.permissions import Subject, register_action, register_subject
        from sso.selectors import erp_logins
        from widgets.topics import register_topic

        register_topic("item", policies.may_subscribe_item)
        register_topic("order", policies.may_subscribe_order)
        register_action("inventory.view", _("view stock"))
        register_action("orders.view", _("view sales orders"))
        register_subject(StockLevel, Subject(warehouse="warehouse"))
        register_subject(
            SalesOrder,
            Subject(
                amount="amount",
                currency="currency",
                customer="customer",
                own=lambda user: Q(sales_rep_login__in=erp_logins(user)),
                is_own=lambda user, order: order.sales_rep_login in erp_logins(user),
            ),
        )
        from erp.events import register
        from erp.subjects import register_subject_kind
        from inventory import services, subjects

        register("erp.stock.changed", services.handle_stock_changed, services.STOCK_CHANGED)
        register("erp.order.status_changed", services.handle_order_status_changed, services.ORDER_STATUS_CHANGED)
        register_subject_kind("stock", event_types=("erp.stock.changed",),
                              from_event=subjects.stock_from_event, from_id=subjects.stock_from_id)
        register_subject_kind("order", event_types=("erp.order.status_changed",),
                              from_event=subjects.order_from_event, from_id=subjects.order_from_id,
                              status_label=order_status_label)

        from inventory.answers import register_bot_intents

        register_bot_intents()  # what the bot answers about inventory
