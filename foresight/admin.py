from django.contrib import admin

from foresight.models import ExpenseScore, Feedback, ModelRun, ReceivableRisk, RestockSuggestion, SeriesForecast


@admin.register(ModelRun)
class ModelRunAdmin(admin.ModelAdmin):
    list_display = ["version", "kind", "status", "started_at", "finished_at"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in ModelRun._meta.fields]


@admin.register(SeriesForecast)
class SeriesForecastAdmin(admin.ModelAdmin):
    list_display = ["sku", "warehouse", "method", "sigma", "history_end", "fitted_at"]
    list_filter = ["method", "warehouse"]
    search_fields = ["sku"]


@admin.register(RestockSuggestion)
class RestockSuggestionAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "warehouse", "quantity", "reorder_point", "erp_reorder_point", "days_of_cover",
                    "method", "status", "requisition_number", "notified_at"]
    list_filter = ["status", "warehouse", "method"]
    search_fields = ["sku", "name"]


@admin.register(ReceivableRisk)
class ReceivableRiskAdmin(admin.ModelAdmin):
    list_display = ["invoice", "customer", "outstanding", "due_date", "probability", "status", "alerted_at"]
    list_filter = ["status"]
    search_fields = ["invoice", "customer"]


@admin.register(ExpenseScore)
class ExpenseScoreAdmin(admin.ModelAdmin):
    list_display = ["document", "category", "score", "category_ratio", "flagged", "review_group_opened"]
    list_filter = ["flagged"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["at", "user", "kind", "object_id", "action", "version"]
    list_filter = ["kind", "action"]
