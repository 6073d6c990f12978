from django.urls import path

from widgets import matrix
from widgets.views import WIDGET_PAGES

app_name = "widgets"
urlpatterns = [
    path("matrix/", matrix.bootstrap, name="matrix"),
    path("matrix/session", matrix.session, name="matrix-session"),
]
for route, view, name in WIDGET_PAGES:  # registered by the apps that own them, in ready()
    urlpatterns += [path(route, view, name=name), path(f"{route}body/", view, {"body": True}, name=f"{name}-body")]
