from django.urls import path

from foresight import views

app_name = "foresight"
urlpatterns = [
    path("restock/", views.restock, name="restock"),
    path("receivables-at-risk/", views.risks, name="risks"),
]
