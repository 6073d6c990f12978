from django.urls import path

from boards import views

app_name = "boards"
urlpatterns = [
    path("<int:group_id>/", views.board, name="board"),
    path("<int:group_id>/body/", views.board, {"part": "body"}, name="body"),
    path("<int:group_id>/stock/", views.board, {"part": "stock"}, name="stock"),
    path("<int:group_id>/join/", views.join, name="join"),
    path("<int:group_id>/act/<slug:action>/", views.act, name="act"),
]
