"""allauth adapter for WeCom. WeCom's OAuth is not RFC 6749: the code is not exchanged for a user
token but looked up with the corp's own access token, so the token step is replaced by
``WeComExchange`` (httpx, cached corp token) and the "token" allauth keeps is empty."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.providers.oauth2.client import OAuth2Client
from allauth.socialaccount.providers.oauth2.views import OAuth2Adapter, OAuth2CallbackView, OAuth2LoginView
from allauth.utils import get_request_param
from django.http import HttpRequest

from im.platforms.wecom import exchange as wecom
from sso.im_login.base import AppConfig, ExchangeError


class WeComOAuth2Client(OAuth2Client):
    agent_id = ""

    def get_redirect_url(self, authorization_url: str, scope: Any, extra_params: dict) -> str:
        if authorization_url.startswith(wecom.OAUTH_AUTHORIZE_URL):
            params = {
                "appid": self.consumer_key,
                "redirect_uri": self.callback_url,
                "response_type": "code",
                "scope": self.scope_delimiter.join(scope) if not isinstance(scope, str) else scope,
                "state": self.state or "",
            }
            if self.agent_id:
                params["agentid"] = self.agent_id
            return f"{authorization_url}?{urlencode(params)}#wechat_redirect"
        params = {
            "login_type": "CorpApp",
            "appid": self.consumer_key,
            "agentid": self.agent_id,
            "redirect_uri": self.callback_url,
            "state": self.state or "",
        }
        return f"{authorization_url}?{urlencode(params)}"


class WeComOAuth2Adapter(OAuth2Adapter):
    provider_id = "wecom"
    access_token_url = wecom.USERINFO_URL
    client_class = WeComOAuth2Client

    @property
    def authorize_url(self) -> str:
        return self.get_provider().app.settings.get("AUTHORIZE_URL", wecom.WEB_LOGIN_URL)

    def get_client(self, request: HttpRequest, app: Any) -> WeComOAuth2Client:
        client = super().get_client(request, app)
        client.agent_id = str((app.settings or {}).get("agent_id", ""))
        return client

    def get_access_token_data(self, request: HttpRequest, app: Any, client: Any, pkce_code_verifier: Any = None):
        code = get_request_param(request, "code")
        exchange = wecom.WeComExchange(AppConfig(app.client_id, app.secret, dict(app.settings or {})))
        try:
            who = exchange.exchange(code)
        except ExchangeError as exc:
            from sso.im_login.views import refused

            raise ImmediateHttpResponse(refused(request, exc.reason, self.provider_id)) from exc
        self.did_fetch_access_token = True
        return {"access_token": "", "platform_user": who.as_dict()}

    def complete_login(self, request: HttpRequest, app: Any, token: Any, **kwargs: Any):
        return self.get_provider().sociallogin_from_response(request, kwargs["response"]["platform_user"])


oauth2_login = OAuth2LoginView.adapter_view(WeComOAuth2Adapter)
oauth2_callback = OAuth2CallbackView.adapter_view(WeComOAuth2Adapter)
