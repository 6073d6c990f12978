from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("Inventory and orders")

    def ready(self) -> None:
        from django.db.models import Q

        from inventory import policies
        from inventory.models import SalesOrder, StockLevel, order_status_label
        from sso.permissions import ConstraintFields, register_action, register_constraint_fields
        from sso.selectors import erp_logins
        from widgets.topics import register_topic

        register_topic("item", policies.may_subscribe_item)
        register_topic("order", policies.may_subscribe_order)
        register_action("inventory.view", _("view stock"))
        register_action("orders.view", _("view sales orders"))
        register_constraint_fields(StockLevel, ConstraintFields(warehouse="warehouse"))
        register_constraint_fields(
            SalesOrder,
            ConstraintFields(
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
        from sso.links import register_link_page
        from widgets.embed import register_embed_topics

        def order_topics(number: str) -> frozenset[str]:
            return frozenset(f"order.{pk}" for pk in SalesOrder.objects.filter(external_id=number)
                             .values_list("pk", flat=True))

        # The order widget (/w/order/<number>/): what a card link to it, or an embed of it, may watch.
        register_link_page(r"/w/order/(?P<number>[^/]+)/", subpaths=("body/",),
                           topics=lambda match: set(order_topics(match["number"])))
        register_embed_topics("widgets", "order", lambda args, user: order_topics(args["number"]))
        from inventory import widgets
        from widgets.views import register_widget_page

        register_widget_page("stock/<str:sku>/", widgets.stock, "stock")
        register_widget_page("order/<str:number>/", widgets.order, "order")
