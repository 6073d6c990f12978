from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import (
    AppliedDecision,
    Customer,
    DemoUser,
    ExpenseClaim,
    FaultPlan,
    Item,
    Project,
    PurchaseRequisition,
    Receivable,
    RequisitionLine,
    SalesOrder,
    Stock,
    Supplier,
    Warehouse,
)


@admin.register(DemoUser)
class DemoUserAdmin(admin.ModelAdmin):
    list_display = ["login", "name", "name_en", "title", "department", "email"]
    list_filter = ["department"]
    search_fields = ["login", "name", "name_en", "email"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "sales_rep"]
    list_filter = ["sales_rep"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "contact_name", "contact_email"]
    search_fields = ["code", "name", "contact_name", "contact_email"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "name_en", "unit", "unit_price", "supplier", "safety_level"]
    list_filter = ["supplier", "unit"]
    search_fields = ["sku", "name", "name_en"]


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["code", "name", "name_en"]


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["item", "warehouse", "quantity", "reserved", "below_safety", "updated_at"]
    list_filter = ["warehouse"]
    search_fields = ["item__sku", "item__name", "item__name_en"]
    list_select_related = ["item", "warehouse"]

    @admin.display(boolean=True, description=_("below safety level"))
    def below_safety(self, obj: Stock) -> bool:
        return obj.below_safety


class RequisitionLineInline(admin.TabularInline):
    model = RequisitionLine
    extra = 0


@admin.register(PurchaseRequisition)
class PurchaseRequisitionAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "title",
        "project",
        "requester",
        "amount",
        "currency",
        "state",
        "urgent",
        "decided_by",
    ]
    list_filter = ["state", "urgent", "project"]
    search_fields = ["number", "title", "requester", "decided_by"]
    date_hierarchy = "created_at"
    inlines = [RequisitionLineInline]


@admin.register(RequisitionLine)
class RequisitionLineAdmin(admin.ModelAdmin):
    list_display = ["requisition", "sku", "name", "qty", "unit_price"]
    search_fields = ["requisition__number", "sku", "name"]


@admin.register(ExpenseClaim)
class ExpenseClaimAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "title",
        "category",
        "project",
        "requester",
        "amount",
        "currency",
        "state",
        "decided_by",
    ]
    list_filter = ["state", "category", "project"]
    search_fields = ["number", "title", "requester", "decided_by"]
    date_hierarchy = "created_at"


@admin.register(SalesOrder)
class SalesOrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "sales_rep", "status", "amount", "currency", "delivery_date"]
    list_filter = ["status", "customer"]
    search_fields = ["number", "customer__name", "sales_rep"]


@admin.register(Receivable)
class ReceivableAdmin(admin.ModelAdmin):
    list_display = ["invoice_number", "customer", "project", "amount", "paid_amount", "currency", "due_date"]
    list_filter = ["currency", "customer", "project"]
    search_fields = ["invoice_number", "customer__name"]
    date_hierarchy = "due_date"


@admin.register(AppliedDecision)
class AppliedDecisionAdmin(admin.ModelAdmin):
    list_display = ["document_number", "outcome", "actor", "decided_at", "idempotency_key"]
    list_filter = ["outcome"]
    search_fields = ["document_number", "actor", "idempotency_key"]


@admin.register(FaultPlan)
class FaultPlanAdmin(admin.ModelAdmin):
    list_display = ["pk", "transient_failures_left", "permanent_failure", "stall_seconds"]
