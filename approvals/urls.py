from django.urls import path

from approvals import views

app_name = "approvals"
urlpatterns = [
    path("", views.mine, name="mine"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/panel/", views.panel, name="panel"),
    path("<int:pk>/decide/", views.decide, name="decide"),
]
