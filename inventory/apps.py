from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = _("Inventory and orders")

    def ready(self) -> None:
        from erp.events import register
        from inventory import services

        register("erp.stock.changed", services.handle_stock_changed, services.STOCK_CHANGED)
        register("erp.order.status_changed", services.handle_order_status_changed, services.ORDER_STATUS_CHANGED)
