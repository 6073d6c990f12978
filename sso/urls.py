from django.urls import path

from sso import views

app_name = "sso"
urlpatterns = [
    path("s/<str:token>/", views.link, name="link"),
]
