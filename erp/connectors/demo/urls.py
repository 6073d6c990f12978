from django.urls import path

from . import views

app_name = "demo_erp"

urlpatterns = [
    path("", views.console, name="console"),
    path("requisitions/new/", views.new_requisition, name="new_requisition"),
    path("claims/new/", views.new_expense_claim, name="new_expense_claim"),
    path("documents/<str:number>/decide/", views.decide, name="decide"),
    path("documents/<str:number>/resend/", views.resend, name="resend"),
    path("stock/<int:pk>/adjust/", views.adjust_stock, name="adjust_stock"),
    path("orders/<str:number>/status/", views.order_status, name="order_status"),
]
