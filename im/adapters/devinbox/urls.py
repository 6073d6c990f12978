from django.urls import path

from im.adapters.devinbox import views

app_name = "devinbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("phone/<int:user_id>/", views.phone, name="phone"),
    path("message/<int:message_id>/action/<slug:action_id>/", views.action, name="action"),
]
