"""Feishu / Lark: an authorization code → the user's open_id (and tenant, email, mobile).

Documented calls (open.feishu.cn, 认证及授权 › 获取访问凭证 / 登录态管理):
- ``POST /open-apis/authen/v2/oauth/token`` JSON ``{grant_type: authorization_code, client_id, client_secret,
  code, redirect_uri?}`` → ``{code: 0, access_token, expires_in, token_type, scope}``; errors answer HTTP 400
  with ``{code, error, error_description}``: 20003 code not found (or used), 20004 expired, 20065 used.
- ``GET /open-apis/authen/v1/user_info`` with ``Authorization: Bearer <user_access_token>`` →
  ``{code: 0, data: {open_id, union_id, user_id, tenant_key, name, email, enterprise_email, mobile, …}}``.
The user access token is used once, here, and never stored.
"""

from __future__ import annotations

from urllib.parse import urlencode

from im.platforms.feishu.adapter import API
from sso.im_login.base import ExchangeError, LoginFreeExchange, PlatformUser

TOKEN_URL = f"{API}/authen/v2/oauth/token"
USER_INFO_URL = f"{API}/authen/v1/user_info"
AUTHORIZE_URL = "https://accounts.feishu.cn/open-apis/authen/v1/authorize"

INVALID_CODE = {20003, 20004, 20065}


class FeishuExchange(LoginFreeExchange):
    platform = "feishu"

    def exchange(self, code: str, redirect_uri: str = "") -> PlatformUser:
        payload = {
            "grant_type": "authorization_code",
            "client_id": self.config.client_id,
            "client_secret": self.config.secret,
            "code": code,
        }
        if redirect_uri:
            # Required, and compared exactly, when the code came from the authorize redirect;
            # codes from the in-client JSAPI come without one.
            payload["redirect_uri"] = redirect_uri
        token = self.request_json(
            "POST", TOKEN_URL, json=payload, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        status = token.get("code", 0)
        if status in INVALID_CODE:
            raise ExchangeError("code_invalid", f"feishu {status} {token.get('error_description', '')}")
        if status != 0 or not token.get("access_token"):
            raise ExchangeError("platform_error", f"feishu token: {status} {token.get('error_description', '')}")

        info = self.request_json("GET", USER_INFO_URL, headers={"Authorization": f"Bearer {token['access_token']}"})
        if info.get("code", 0) != 0 or not isinstance(info.get("data"), dict):
            raise ExchangeError("platform_error", f"feishu user_info: {info.get('code')} {info.get('msg')}")
        return user_from_info(info["data"])

    @staticmethod
    def user_from_info(data: dict) -> PlatformUser:
        """allauth's Feishu ``extra_data`` is the same user_info object (``sso.adapters``)."""
        return user_from_info(data)

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        params = {
            "client_id": self.config.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{AUTHORIZE_URL}?{urlencode(params)}"


def user_from_info(data: dict) -> PlatformUser:
    """The user_info ``data`` object (also allauth's Feishu extra_data) as a PlatformUser."""
    if not data.get("open_id"):
        raise ExchangeError("platform_error", "feishu user_info without open_id")
    return PlatformUser(
        platform=FeishuExchange.platform,
        tenant=data.get("tenant_key", ""),
        external_id=data["open_id"],
        # The enterprise mailbox is assigned by the tenant; the plain email field is the user's own.
        email=data.get("enterprise_email") or data.get("email") or "",
        mobile=data.get("mobile", ""),
        name=data.get("name", ""),
    )
