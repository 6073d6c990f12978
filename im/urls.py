from django.urls import path

from im import inbound

app_name = "im"

urlpatterns = [
    path("<slug:platform>/callback", inbound.callback, name="callback"),
]
