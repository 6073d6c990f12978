from allauth.socialaccount.providers.oauth2.urls import default_urlpatterns

from im.adapters.wecom.signin.provider import WeComProvider

urlpatterns = default_urlpatterns(WeComProvider)
