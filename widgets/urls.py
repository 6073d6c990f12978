from django.urls import path

from widgets import matrix, views

app_name = "widgets"
urlpatterns = [
    path("matrix/", matrix.bootstrap, name="matrix"),
    path("matrix/session", matrix.session, name="matrix-session"),
    path("stock/<str:sku>/", views.stock, name="stock"),
    path("stock/<str:sku>/body/", views.stock, {"body": True}, name="stock-body"),
    path("order/<str:number>/", views.order, name="order"),
    path("order/<str:number>/body/", views.order, {"body": True}, name="order-body"),
    path("receivables/<str:scope>/<str:name>/", views.receivables, name="receivables"),
    path("receivables/<str:scope>/<str:name>/body/", views.receivables, {"body": True}, name="receivables-body"),
    path("approval/<int:pk>/", views.approval, name="approval"),
    path("approval/<int:pk>/body/", views.approval, {"body": True}, name="approval-body"),
    path("pending/", views.pending, name="pending"),
    path("pending/body/", views.pending, {"body": True}, name="pending-body"),
]
