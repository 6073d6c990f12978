"""WeCom (企业微信) for django-allauth: web login (QR code / signed-in desktop client) or the in-client
OAuth redirect, then the code → userid exchange of ``im.platforms.wecom.exchange``.

App: client_id = corp id (``corpid``), secret = the self-built app's secret, settings:
``{"agent_id": "1000002"}`` and optionally ``"AUTHORIZE_URL"`` (the in-client OAuth page instead of the
web login page) and ``"scope"``.
"""

from __future__ import annotations

from allauth.socialaccount.providers.base import ProviderAccount
from allauth.socialaccount.providers.oauth2.provider import OAuth2Provider

from im.platforms.wecom.signin.views import WeComOAuth2Adapter


class WeComAccount(ProviderAccount):
    def to_str(self) -> str:
        data = self.account.extra_data
        return data.get("name") or data.get("external_id") or super().to_str()


class WeComProvider(OAuth2Provider):
    id = "wecom"
    name = "WeCom"
    account_class = WeComAccount
    oauth2_adapter_class = WeComOAuth2Adapter

    def extract_uid(self, data: dict) -> str:
        return str(data["external_id"])

    def extract_common_fields(self, data: dict) -> dict:
        return {"name": data.get("name") or None, "email": data.get("email") or None}

    def get_default_scope(self) -> list[str]:
        return ["snsapi_base"]


provider_classes = [WeComProvider]
