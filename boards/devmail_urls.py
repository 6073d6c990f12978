from django.urls import path

from boards import devmail

app_name = "devmail"
urlpatterns = [path("", devmail.mailbox, name="mailbox")]
