from django.contrib import admin

from inventory.models import SalesOrder, StockLevel


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "warehouse", "quantity", "reserved", "safety_level", "updated_at"]
    list_filter = ["warehouse", "connector"]
    search_fields = ["sku", "name"]


@admin.register(SalesOrder)
class SalesOrderAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "status", "previous_status", "delivery_date", "updated_at"]
    list_filter = ["status", "connector"]
    search_fields = ["external_id", "customer"]
