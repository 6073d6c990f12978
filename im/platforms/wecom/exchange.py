"""WeCom (企业微信): a web-authorization code → the member's userid.

Documented calls (developer.work.weixin.qq.com, 身份验证 › 网页授权登录):
- ``GET /cgi-bin/gettoken?corpid=ID&corpsecret=SECRET``: the corp token, through the adapter (one token
  client per app, ``WeComAdapter.access_token``).
- ``GET /cgi-bin/auth/getuserinfo?access_token=…&code=…`` → ``{errcode, errmsg, userid, user_ticket?}``
  for a member, ``{openid, external_userid}`` for someone outside the corp; ``errcode 40029``
  (invalid code) for a code that is unknown, used (codes are single-use) or older than 5 minutes.
- ``POST /cgi-bin/auth/getuserdetail?access_token=…`` ``{"user_ticket": …}`` → ``{userid, mobile, email,
  biz_mail, …}``, only when the link asked for ``scope=snsapi_privateinfo``.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from im.platforms.base import TransportError
from im.platforms.wecom.adapter import API, TOKEN_REJECTED, WeComAdapter, WeComConfig
from sso.im_login import base
from sso.im_login.base import ExchangeError, LoginFreeExchange, PlatformUser

log = logging.getLogger(__name__)

USERINFO_URL = f"{API}/auth/getuserinfo"
USERDETAIL_URL = f"{API}/auth/getuserdetail"
# Inside the WeCom client: a silent redirect that appends ?code=…&state=….
OAUTH_AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
# In a desktop browser: the QR-code / "signed-in client" web login page.
WEB_LOGIN_URL = "https://login.work.weixin.qq.com/wwlogin/sso/login"

INVALID_CODE = 40029
# TOKEN_REJECTED (the adapter's one table): the corp token was revoked or expired before our cached
# copy, or went missing: fetch a new one once.


class WeComExchange(LoginFreeExchange):
    platform = "wecom"

    @property
    def corp_id(self) -> str:
        return self.config.client_id

    def expected_tenant(self) -> str:
        # The corp token only ever resolves members of this corp.
        return self.corp_id

    def token_client(self) -> WeComAdapter:
        """The adapter is the app's one token client (fetch, cache, "token rejected" table)."""
        return WeComAdapter(WeComConfig.from_app(self.config), transport=base.http_transport)

    def access_token(self) -> str:
        try:
            return self.token_client().access_token()
        except TransportError as exc:
            raise ExchangeError("platform_error", str(exc)) from exc

    def exchange(self, code: str, redirect_uri: str = "") -> PlatformUser:
        body = self._userinfo(code)
        if body.get("errcode") in TOKEN_REJECTED:
            self.token_client().forget_access_token()
            body = self._userinfo(code)
        errcode = body.get("errcode", 0)
        if errcode == INVALID_CODE:
            raise ExchangeError("code_invalid", f"wecom {errcode} {body.get('errmsg')}")
        if errcode != 0:
            raise ExchangeError("platform_error", f"wecom getuserinfo: {errcode} {body.get('errmsg')}")
        userid = body.get("userid") or body.get("UserId")  # the older /user/getuserinfo spelled it UserId
        if not userid:
            # openid / external_userid: a WeChat user or customer, not a member of the corp.
            raise ExchangeError("not_member", "wecom: no userid in the answer")
        email = mobile = ""
        if body.get("user_ticket"):
            email, mobile = self._private_info(body["user_ticket"])
        return PlatformUser(platform=self.platform, tenant=self.corp_id, external_id=userid, email=email, mobile=mobile)

    def _userinfo(self, code: str) -> dict:
        return self.request_json("GET", USERINFO_URL, params={"access_token": self.access_token(), "code": code})

    def _private_info(self, user_ticket: str) -> tuple[str, str]:
        """Email and mobile, when the member allowed them; their absence only means no auto-linking."""
        body = self.request_json(
            "POST", USERDETAIL_URL, params={"access_token": self.access_token()}, json={"user_ticket": user_ticket}
        )
        if body.get("errcode", 0) != 0:
            log.warning("wecom getuserdetail refused: %s %s", body.get("errcode"), body.get("errmsg"))
            return "", ""
        return body.get("email") or body.get("biz_mail") or "", body.get("mobile") or ""

    def authorize_url(self, redirect_uri: str, state: str) -> str | None:
        params = {
            "appid": self.corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": self.config.settings.get("scope", "snsapi_base"),
            "state": state,
        }
        if self.config.settings.get("agent_id"):
            params["agentid"] = str(self.config.settings["agent_id"])
        # The fragment is required by the documentation; the client strips it.
        return f"{OAUTH_AUTHORIZE_URL}?{urlencode(params)}#wechat_redirect"
