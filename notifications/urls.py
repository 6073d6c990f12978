from django.urls import path

from notifications import views

app_name = "notifications"
urlpatterns = [
    path("bulk-approve/", views.bulk_approve, name="bulk-approve"),
]
