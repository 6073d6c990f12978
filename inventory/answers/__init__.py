"""The bot's stock and orders intents, registered with the bot in ``InventoryConfig.ready()``."""

from __future__ import annotations


def register_bot_intents() -> None:
    from django.db.models import Count, Max
    from django.utils.translation import gettext_lazy

    from bot.intents import Intent, Reference, register_example, register_intent, register_names, register_reference
    from inventory.answers import orders, stock
    from inventory.models import SalesOrder, StockLevel
    from inventory.selectors import orders_for, stock_levels, stock_of_item

    register_intent(Intent("stock", stock.rows, stock.visible, stock.render,
                           frozenset({"sku", "item", "warehouse", "below_safety"}), empty_title=gettext_lazy("Stock")))
    register_intent(Intent("orders", orders.rows, orders.visible, orders.render,
                           frozenset({"order", "customer", "period", "status", "mine", "ref", "unknown"}),
                           empty_title=gettext_lazy("Orders")))
    register_reference(Reference(
        "order", lambda user: orders_for(user).values_list("external_id", flat=True), intents=("orders",),
        redirect="orders"))
    register_names("customer", SalesOrder,
                   lambda: ((v, v) for v in SalesOrder.objects.values_list("customer", flat=True).distinct()),
                   lambda user, value: orders_for(user).filter(customer=value).exists())
    register_names("sku", StockLevel,
                   lambda: ((row["sku"], row["name"])
                            for row in StockLevel.objects.values("sku", "name").annotate(n=Count("pk"))),
                   lambda user, value: stock_of_item(user, value).exists())
    register_names("warehouse", StockLevel,
                   lambda: ((row["warehouse"], row["name"] or row["warehouse"]) for row in
                            StockLevel.objects.values("warehouse").annotate(name=Max("warehouse_name"))),
                   lambda user, value: stock_levels(user).filter(warehouse=value).exists())
    register_example(20, gettext_lazy("Stock"), gettext_lazy(
        "“SKU-123 还有多少库存”, “伺服电机在上海仓有多少”, “which items are below safety stock”"))
    register_example(30, gettext_lazy("Orders"), gettext_lazy(
        "“订单 SO-2026-0815 到哪了”, “status of my orders shipped this week”"))
