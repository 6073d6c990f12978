from django.urls import path

from sso import oidc_views, views
from sso.im_login import views as im_login_views

app_name = "sso"
urlpatterns = [
    path("s/<str:token>/", views.link, name="link"),
    path("oidc/authenticate/", oidc_views.OidcLoginView.as_view(), name="oidc-login"),
    path("oidc/callback/", oidc_views.OidcCallbackView.as_view(), name="oidc-callback"),
    path("sso/im/<slug:platform>/", im_login_views.login_free, name="im-login"),
]
