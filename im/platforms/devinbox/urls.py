from django.urls import path

from im.platforms.devinbox import views

app_name = "devinbox"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("phone/<int:user_id>/", views.phone, name="phone"),
    path("message/<int:message_id>/action/<slug:action_id>/", views.action, name="action"),
    path("phone/<int:user_id>/ask/", views.ask, name="ask"),
    path("phone/<int:user_id>/unlock/", views.unlock, name="unlock"),
    path("phone/<int:user_id>/lock/", views.lock, name="lock"),
    path("groups/", views.groups, name="groups"),
    path("group/<int:group_id>/", views.group, name="group"),
    path("group/<int:group_id>/body/", views.group, {"body": True}, name="group-body"),
    path("group/<int:group_id>/ask/", views.group_ask, name="group-ask"),
]
