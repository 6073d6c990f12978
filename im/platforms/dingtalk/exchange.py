"""DingTalk (钉钉): a login-free code from ``dd.getAuthCode`` → the staff userid.

Documented calls (open.dingtalk.com, 身份验证(免登) › 企业内部应用免登):
- ``GET https://oapi.dingtalk.com/gettoken?appkey=…&appsecret=…`` → ``{errcode, errmsg, access_token, expires_in}``
  (7200 s), through the adapter: one token client per app (``DingTalkAdapter.access_token``).
- ``POST https://oapi.dingtalk.com/topapi/v2/user/getuserinfo?access_token=…`` JSON ``{"code": …}`` →
  ``{errcode: 0, result: {userid, unionid, name, sys, sys_level, device_id, associated_unionid}}``;
  ``errcode 40078`` (不存在的临时授权码) for a code that is unknown, used or older than 5 minutes.
- ``POST https://oapi.dingtalk.com/topapi/v2/user/get?access_token=…`` JSON ``{"userid": …, "language": "zh_CN"}``
  → ``{errcode: 0, result: {userid, name, mobile, email, org_email, …}}`` (fields need contact permissions).
- ``POST https://oapi.dingtalk.com/topapi/user/getbyunionid?access_token=…`` JSON ``{"unionid": …}`` →
  ``{errcode: 0, result: {userid, contact_type}}``: used for allauth's DingTalk OAuth, which yields a unionId.
"""

from __future__ import annotations

import logging

from im.platforms.base import TransportError
from im.platforms.dingtalk.adapter import OAPI, TOKEN_REJECTED, DingTalkAdapter, DingTalkConfig
from sso.im_login import base
from sso.im_login.base import ExchangeError, LoginFreeExchange, PlatformUser

log = logging.getLogger(__name__)

USERINFO_URL = f"{OAPI}/topapi/v2/user/getuserinfo"
USER_GET_URL = f"{OAPI}/topapi/v2/user/get"
BY_UNIONID_URL = f"{OAPI}/topapi/user/getbyunionid"

INVALID_CODE = 40078


class DingTalkExchange(LoginFreeExchange):
    platform = "dingtalk"

    @property
    def corp_id(self) -> str:
        return str(self.config.settings.get("tenant", ""))

    def token_client(self) -> DingTalkAdapter:
        """The adapter is the app's one token client (fetch, cache, "token rejected" table)."""
        return DingTalkAdapter(DingTalkConfig.from_app(self.config), transport=base.http_transport)

    def access_token(self) -> str:
        try:
            return self.token_client().access_token()
        except TransportError as exc:
            raise ExchangeError("platform_error", str(exc)) from exc

    def _call(self, url: str, payload: dict) -> dict:
        body = self.request_json("POST", url, params={"access_token": self.access_token()}, json=payload)
        if body.get("errcode") in TOKEN_REJECTED:
            self.token_client().forget_access_token()
            body = self.request_json("POST", url, params={"access_token": self.access_token()}, json=payload)
        return body

    def exchange(self, code: str, redirect_uri: str = "") -> PlatformUser:
        body = self._call(USERINFO_URL, {"code": code})
        errcode = body.get("errcode", 0)
        if errcode == INVALID_CODE:
            raise ExchangeError("code_invalid", f"dingtalk {errcode} {body.get('errmsg')}")
        result = body.get("result") or {}
        if errcode != 0 or not result.get("userid"):
            raise ExchangeError("platform_error", f"dingtalk getuserinfo: {errcode} {body.get('errmsg')}")
        return self.user(result["userid"], name=result.get("name", ""))

    def user(self, userid: str, name: str = "") -> PlatformUser:
        """The PlatformUser for a staff userid, with email and mobile when the app may read them."""
        email = mobile = ""
        detail = self._call(USER_GET_URL, {"userid": userid, "language": "zh_CN"})
        if detail.get("errcode", 0) == 0:
            result = detail.get("result") or {}
            email = result.get("org_email") or result.get("email") or ""
            mobile = result.get("mobile") or ""
            name = name or result.get("name", "")
        else:
            log.warning("dingtalk user/get refused: %s %s", detail.get("errcode"), detail.get("errmsg"))
        return PlatformUser(
            platform=self.platform, tenant=self.corp_id, external_id=userid, email=email, mobile=mobile, name=name
        )

    def userid_by_unionid(self, unionid: str) -> str:
        body = self._call(BY_UNIONID_URL, {"unionid": unionid})
        userid = (body.get("result") or {}).get("userid")
        if body.get("errcode", 0) != 0 or not userid:
            # 60121: not found in this corp's directory.
            raise ExchangeError("not_member", f"dingtalk getbyunionid: {body.get('errcode')} {body.get('errmsg')}")
        return userid
