from django.contrib import admin

from finance.models import Receivable


@admin.register(Receivable)
class ReceivableAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "project", "amount", "paid", "currency", "due_date", "updated_at"]
    list_filter = ["currency", "project", "connector"]
    search_fields = ["external_id", "customer", "project"]
    date_hierarchy = "due_date"
