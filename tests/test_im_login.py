"""IM sign-in: login-free codes (sso/im_login/, im/platforms/<platform>/exchange.py) and allauth providers
(im/platforms/wecom/signin/, sso/adapters.py).

The platforms are answered at the HTTP layer by an ``httpx.MockTransport`` with the documented
examples in im/platforms/<platform>/fixtures/signin/, and every outgoing request is checked against the
documentation: method, URL, query, JSON body, headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.cache import cache

from sso.im_login import base
from sso.models import ImIdentity, UnlinkedImUser

pytestmark = pytest.mark.django_db

PLATFORMS = Path(__file__).resolve().parent.parent / "im" / "platforms"
CORP_ID = "ww1234567890abcdef"
FEISHU_TENANT = "736588c92lxf175d"
DINGTALK_CORP = "dingcorp0001"


def recorded(platform: str, name: str) -> dict:
    return json.loads((PLATFORMS / platform / "fixtures" / "signin" / f"{name}.json").read_text())


class PlatformApi:
    """Routes (method, host + path) to recorded answers, and keeps every request it saw."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]] = {}
        self.requests: list[httpx.Request] = []

    def answer(self, method: str, url: str, body: dict, status: int = 200) -> None:
        self.routes[(method, url)] = lambda request: httpx.Response(status, json=body)

    def fail(self, method: str, url: str, exc: Exception | None = None, status: int = 0) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            if exc is not None:
                raise exc
            return httpx.Response(status, text="<html>Bad Gateway</html>")

        self.routes[(method, url)] = handler

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, f"{request.url.scheme}://{request.url.host}{request.url.path}")
        if key not in self.routes:
            raise AssertionError(f"unexpected request {key}")
        return self.routes[key](request)

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, f"{r.url.scheme}://{r.url.host}{r.url.path}") for r in self.requests]


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def body(request: httpx.Request) -> dict:
    return json.loads(request.content)


@pytest.fixture
def api(monkeypatch, settings) -> PlatformApi:
    platform_api = PlatformApi()
    monkeypatch.setattr(base, "http_transport", httpx.MockTransport(platform_api.handle))
    settings.SOCIALACCOUNT_PROVIDERS = {
        "wecom": {"APPS": [{"client_id": CORP_ID, "secret": "wecom-secret", "settings": {"agent_id": "1000002"}}]},
        "feishu": {
            "APPS": [
                {"client_id": "cli_a5ca35a685b0x26e", "secret": "feishu-secret", "settings": {"tenant": FEISHU_TENANT}}
            ]
        },
        "dingtalk": {
            "APPS": [{"client_id": "dingappkey", "secret": "dingtalk-secret", "settings": {"tenant": DINGTALK_CORP}}]
        },
    }
    cache.clear()  # cached platform tokens must not leak between tests
    yield platform_api
    cache.clear()


@pytest.fixture
def li_si(django_user_model):
    return django_user_model.objects.create_user("li.si", email="li.si@example.com", first_name="四", last_name="李")


WECOM_TOKEN = "https://qyapi.weixin.qq.com/cgi-bin/gettoken"
WECOM_USERINFO = "https://qyapi.weixin.qq.com/cgi-bin/auth/getuserinfo"
WECOM_USERDETAIL = "https://qyapi.weixin.qq.com/cgi-bin/auth/getuserdetail"
FEISHU_TOKEN = "https://open.feishu.cn/open-apis/authen/v2/oauth/token"
FEISHU_USER_INFO = "https://open.feishu.cn/open-apis/authen/v1/user_info"
DINGTALK_TOKEN = "https://oapi.dingtalk.com/gettoken"
DINGTALK_USERINFO = "https://oapi.dingtalk.com/topapi/v2/user/getuserinfo"
DINGTALK_USER_GET = "https://oapi.dingtalk.com/topapi/v2/user/get"


def wecom_answers(api: PlatformApi, userinfo: str = "getuserinfo") -> None:
    api.answer("GET", WECOM_TOKEN, recorded("wecom", "gettoken"))
    api.answer("GET", WECOM_USERINFO, recorded("wecom", userinfo))
    api.answer("POST", WECOM_USERDETAIL, recorded("wecom", "getuserdetail"))


def signed_in_as(client) -> str | None:
    return client.session.get("_auth_user_id")


def start_session(client) -> str:
    session = client.session
    session["planted"] = True
    session.save()
    return session.session_key


# --- WeCom login-free -------------------------------------------------------------------------


def test_wecom_code_signs_in_rotates_session_and_redirects_to_next(client, api, li_si):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api)
    old_key = start_session(client)

    response = client.get("/sso/im/wecom/", {"code": "CODE-1", "next": "/approvals/12/"})

    assert response.status_code == 302
    assert response["Location"] == "/approvals/12/"
    assert signed_in_as(client) == str(li_si.pk)
    assert client.session.session_key != old_key
    # The documented conversation, in order: corp token, code → userid, user_ticket → private info.
    assert api.calls() == [("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO), ("POST", WECOM_USERDETAIL)]
    token, userinfo, detail = api.requests
    assert query(token) == {"corpid": CORP_ID, "corpsecret": "wecom-secret"}
    assert query(userinfo) == {"access_token": "accesstoken000001", "code": "CODE-1"}
    assert query(detail) == {"access_token": "accesstoken000001"}
    assert body(detail) == {"user_ticket": "USER_TICKET"}
    assert detail.headers["content-type"] == "application/json"
    # What the platform said about the person is kept on the identity.
    identity = ImIdentity.objects.get(external_id="USERID")
    assert (identity.email, identity.mobile) == ("zhangsan@gzdev.com", "13800000000")


def test_wecom_corp_token_is_cached_between_sign_ins(client, api, li_si):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")

    client.get("/sso/im/wecom/", {"code": "CODE-1"})
    client.get("/sso/im/wecom/", {"code": "CODE-2"})

    assert api.calls().count(("GET", WECOM_TOKEN)) == 1
    assert [query(r)["code"] for r in api.requests if r.url.path.endswith("getuserinfo")] == ["CODE-1", "CODE-2"]


def test_wecom_rejected_cached_token_is_fetched_again_once(client, api, li_si):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    api.answer("GET", WECOM_TOKEN, recorded("wecom", "gettoken"))
    answers = iter([{"errcode": 42001, "errmsg": "access_token expired"}, recorded("wecom", "getuserinfo_base")])
    api.routes[("GET", WECOM_USERINFO)] = lambda request: httpx.Response(200, json=next(answers))

    response = client.get("/sso/im/wecom/", {"code": "CODE-1"})

    assert response.status_code == 302
    assert api.calls() == [("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO), ("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO)]


def test_wecom_sign_in_and_adapter_share_one_token_error_table(client, api, li_si):
    """41001 (access_token missing) is a rejected token for sign-in as it always was for sending: the
    exchange reads the adapter's one table (it used to have its own, without 41001)."""
    from im.platforms.wecom import adapter, exchange

    assert exchange.TOKEN_REJECTED is adapter.TOKEN_REJECTED and 41001 in exchange.TOKEN_REJECTED
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    api.answer("GET", WECOM_TOKEN, recorded("wecom", "gettoken"))
    answers = iter([{"errcode": 41001, "errmsg": "access_token missing"}, recorded("wecom", "getuserinfo_base")])
    api.routes[("GET", WECOM_USERINFO)] = lambda request: httpx.Response(200, json=next(answers))

    assert client.get("/sso/im/wecom/", {"code": "CODE-1"}).status_code == 302
    assert api.calls() == [("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO), ("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO)]


def test_exchanges_are_registered_by_their_platform_packages():
    from im.platforms.dingtalk.exchange import DingTalkExchange
    from im.platforms.feishu.exchange import FeishuExchange
    from im.platforms.wecom.exchange import WeComExchange

    assert [base.exchange_class(p) for p in ("wecom", "feishu", "dingtalk", "slack")] == [
        WeComExchange, FeishuExchange, DingTalkExchange, None]


@pytest.mark.parametrize("language, text", [("en", "expired or was already used"), ("zh-hans", "已过期或已被使用")])
def test_wecom_used_or_expired_code_is_refused(client, api, li_si, language, text):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_invalid_code")

    response = client.get("/sso/im/wecom/", {"code": "USED"}, headers={"accept-language": language})

    assert response.status_code == 400
    assert text in response.content.decode()
    assert 'data-reason="code_invalid"' in response.content.decode()
    assert signed_in_as(client) is None


def test_wecom_non_member_is_refused(client, api):
    wecom_answers(api, "getuserinfo_non_member")

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 403
    assert 'data-reason="not_member"' in response.content.decode()
    assert signed_in_as(client) is None


def test_unknown_identity_is_refused_and_reported_to_admins(client, admin_client, api, django_user_model):
    wecom_answers(api)  # email zhangsan@gzdev.com, mobile 13800000000: nobody has them
    users_before = django_user_model.objects.count()

    first = client.get("/sso/im/wecom/", {"code": "CODE-1"})
    second = client.get("/sso/im/wecom/", {"code": "CODE-2"})

    assert first.status_code == second.status_code == 403
    assert 'data-reason="unknown"' in first.content.decode()
    assert signed_in_as(client) is None
    assert django_user_model.objects.count() == users_before  # nobody created
    report = UnlinkedImUser.objects.get()
    assert (report.platform, report.tenant, report.external_id) == ("wecom", CORP_ID, "USERID")
    assert (report.email, report.mobile, report.reason, report.attempts) == (
        "zhangsan@gzdev.com",
        "13800000000",
        "unknown",
        2,
    )
    page = admin_client.get("/admin/sso/unlinkedimuser/")
    assert page.status_code == 200
    assert "USERID" in page.content.decode()


def test_unknown_identity_is_linked_by_email_and_report_cleared(client, api, django_user_model):
    zhang = django_user_model.objects.create_user("zhang.san", email="ZhangSan@gzdev.com")
    UnlinkedImUser.objects.create(platform="wecom", tenant=CORP_ID, external_id="USERID", reason="unknown")
    wecom_answers(api)

    response = client.get("/sso/im/wecom/", {"code": "CODE", "next": "/approvals/"})

    assert response.status_code == 302
    assert signed_in_as(client) == str(zhang.pk)
    identity = ImIdentity.objects.get(platform="wecom", external_id="USERID")
    assert (identity.user, identity.tenant, identity.linked_by) == (zhang, CORP_ID, ImIdentity.LinkedBy.EMAIL)
    assert not UnlinkedImUser.objects.exists()


def test_unknown_identity_is_linked_by_mobile_from_another_platform(client, api, django_user_model):
    wang = django_user_model.objects.create_user("wang.wu")
    ImIdentity.objects.create(
        user=wang, platform="feishu", tenant=FEISHU_TENANT, external_id="ou-x", mobile="+8613800000000"
    )
    wecom_answers(api)

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 302
    assert ImIdentity.objects.get(platform="wecom").linked_by == ImIdentity.LinkedBy.MOBILE
    assert signed_in_as(client) == str(wang.pk)


def test_email_matching_two_users_is_refused_as_ambiguous(client, api, django_user_model):
    django_user_model.objects.create_user("a", email="zhangsan@gzdev.com")
    django_user_model.objects.create_user("b", email="zhangsan@gzdev.com")
    wecom_answers(api)

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 403
    assert UnlinkedImUser.objects.get().reason == "ambiguous"
    assert not ImIdentity.objects.exists()


def test_inactive_user_is_refused(client, api, li_si):
    li_si.is_active = False
    li_si.save()
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 403
    assert signed_in_as(client) is None


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/approvals/",
        "//evil.example/",
        "/\\evil.example",
        "http://testserver.evil.example/",
        "approvals",
    ],
)
def test_open_redirect_in_next_is_refused(client, api, li_si, target):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")

    response = client.get("/sso/im/wecom/", {"code": "CODE", "next": target})

    assert response.status_code == 302
    assert response["Location"] == "/approvals/"


def test_without_code_wecom_is_sent_to_the_documented_authorize_page_and_back(client, api, li_si):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")

    response = client.get("/sso/im/wecom/", {"next": "/approvals/12/"})

    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert url.fragment == "wechat_redirect"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params["appid"] == CORP_ID
    assert params["agentid"] == "1000002"
    assert params["response_type"] == "code"
    assert params["scope"] == "snsapi_base"
    assert params["redirect_uri"] == "http://testserver/sso/im/wecom/"
    # WeCom comes back with ?code=…&state=…; next travels in the signed state.
    back = client.get("/sso/im/wecom/", {"code": "CODE", "state": params["state"]})
    assert back["Location"] == "/approvals/12/"
    assert signed_in_as(client) == str(li_si.pk)


def test_tampered_state_is_refused(client, api):
    wecom_answers(api)

    response = client.get("/sso/im/wecom/", {"code": "CODE", "state": "forged"})

    assert response.status_code == 400
    assert api.requests == []


@pytest.mark.parametrize("failure", ["connect", "timeout", "html-502", "html-500"])
def test_platform_failures_are_a_refusal_page_not_a_500(client, api, failure):
    if failure == "connect":
        api.fail("GET", WECOM_TOKEN, exc=httpx.ConnectError("no route"))
    elif failure == "timeout":
        api.fail("GET", WECOM_TOKEN, exc=httpx.ReadTimeout("slow"))
    else:
        api.fail("GET", WECOM_TOKEN, status=int(failure[-3:]))

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 502
    assert 'data-reason="platform_error"' in response.content.decode()


def test_corp_token_refused_is_a_refusal_page(client, api):
    api.answer("GET", WECOM_TOKEN, {"errcode": 40001, "errmsg": "invalid credential"})

    response = client.get("/sso/im/wecom/", {"code": "CODE"})

    assert response.status_code == 502


def test_platform_not_configured_is_404_page(client, api, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {}

    assert client.get("/sso/im/wecom/", {"code": "CODE"}).status_code == 404
    assert client.get("/sso/im/nosuch/", {"code": "CODE"}).status_code == 404
    assert api.requests == []


# --- Feishu login-free ------------------------------------------------------------------------


def feishu_answers(api: PlatformApi) -> None:
    api.answer("POST", FEISHU_TOKEN, recorded("feishu", "token"))
    api.answer("GET", FEISHU_USER_INFO, recorded("feishu", "user_info"))


def test_feishu_code_signs_in(client, api, li_si):
    ImIdentity.objects.create(
        user=li_si, platform="feishu", tenant=FEISHU_TENANT, external_id="ou-caecc734c2e3328a62489fe0648c4b98779515d3"
    )
    feishu_answers(api)

    response = client.get("/sso/im/feishu/", {"code": "a61hb967bd094dge949h79bbexd16dfe", "next": "/approvals/3/"})

    assert response["Location"] == "/approvals/3/"
    assert signed_in_as(client) == str(li_si.pk)
    token, info = api.requests
    assert (token.method, str(token.url)) == ("POST", FEISHU_TOKEN)
    assert token.headers["content-type"] == "application/json; charset=utf-8"
    assert body(token) == {
        "grant_type": "authorization_code",
        "client_id": "cli_a5ca35a685b0x26e",
        "client_secret": "feishu-secret",
        "code": "a61hb967bd094dge949h79bbexd16dfe",
    }
    assert (info.method, str(info.url)) == ("GET", FEISHU_USER_INFO)
    assert info.headers["authorization"] == "Bearer eyJhbGciOiJFUzI1NiIs**********X6wrZHYKDxJkWwhdkrYg"


def test_feishu_authorize_round_trip_sends_the_same_redirect_uri(client, api, li_si):
    ImIdentity.objects.create(
        user=li_si, platform="feishu", tenant=FEISHU_TENANT, external_id="ou-caecc734c2e3328a62489fe0648c4b98779515d3"
    )
    feishu_answers(api)

    response = client.get("/sso/im/feishu/", {"next": "/approvals/3/"})
    url = urlsplit(response["Location"])
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://accounts.feishu.cn/open-apis/authen/v1/authorize"
    assert params["client_id"] == "cli_a5ca35a685b0x26e"
    assert params["response_type"] == "code"

    back = client.get("/sso/im/feishu/", {"code": "CODE", "state": params["state"]})

    assert back["Location"] == "/approvals/3/"
    # Feishu compares redirect_uri with the one the code was requested with.
    assert body(api.requests[0])["redirect_uri"] == params["redirect_uri"] == "http://testserver/sso/im/feishu/"


def test_feishu_used_code_is_refused(client, api):
    api.answer("POST", FEISHU_TOKEN, recorded("feishu", "token_code_used"), status=400)

    response = client.get("/sso/im/feishu/", {"code": "USED"})

    assert response.status_code == 400
    assert 'data-reason="code_invalid"' in response.content.decode()
    assert [r.url.path for r in api.requests] == ["/open-apis/authen/v2/oauth/token"]


def test_feishu_links_by_enterprise_email_in_own_tenant_only(client, api, django_user_model, settings):
    demo = django_user_model.objects.create_user("demo", email="demo@mail.com")
    feishu_answers(api)

    assert client.get("/sso/im/feishu/", {"code": "CODE"}).status_code == 302
    assert ImIdentity.objects.get(platform="feishu").linked_by == ImIdentity.LinkedBy.EMAIL
    assert signed_in_as(client) == str(demo.pk)


def test_feishu_other_tenant_is_not_linked_by_email(client, api, django_user_model, settings):
    django_user_model.objects.create_user("demo", email="demo@mail.com")
    settings.SOCIALACCOUNT_PROVIDERS["feishu"]["APPS"][0]["settings"]["tenant"] = "our-own-tenant"
    feishu_answers(api)

    response = client.get("/sso/im/feishu/", {"code": "CODE"})

    assert response.status_code == 403
    assert not ImIdentity.objects.exists()
    assert UnlinkedImUser.objects.get().tenant == FEISHU_TENANT


# --- DingTalk login-free ----------------------------------------------------------------------


def dingtalk_answers(api: PlatformApi, userinfo: str = "getuserinfo") -> None:
    api.answer("GET", DINGTALK_TOKEN, recorded("dingtalk", "gettoken"))
    api.answer("POST", DINGTALK_USERINFO, recorded("dingtalk", userinfo))
    api.answer("POST", DINGTALK_USER_GET, recorded("dingtalk", "user_get"))


def test_dingtalk_auth_code_signs_in(client, api, li_si):
    ImIdentity.objects.create(user=li_si, platform="dingtalk", tenant=DINGTALK_CORP, external_id="userid123")
    dingtalk_answers(api)

    response = client.get("/sso/im/dingtalk/", {"code": "AUTHCODE", "next": "/approvals/7/"})

    assert response["Location"] == "/approvals/7/"
    assert signed_in_as(client) == str(li_si.pk)
    assert api.calls() == [("GET", DINGTALK_TOKEN), ("POST", DINGTALK_USERINFO), ("POST", DINGTALK_USER_GET)]
    token, userinfo, user_get = api.requests
    assert query(token) == {"appkey": "dingappkey", "appsecret": "dingtalk-secret"}
    assert query(userinfo) == {"access_token": "96fc7a7axxx"}
    assert body(userinfo) == {"code": "AUTHCODE"}
    assert query(user_get) == {"access_token": "96fc7a7axxx"}
    assert body(user_get) == {"userid": "userid123", "language": "zh_CN"}


def test_dingtalk_expired_code_is_refused(client, api):
    dingtalk_answers(api, "getuserinfo_invalid_code")

    response = client.get("/sso/im/dingtalk/", {"code": "OLD"})

    assert response.status_code == 400
    assert 'data-reason="code_invalid"' in response.content.decode()


def test_dingtalk_without_code_asks_the_page_for_one(client, api):
    response = client.get("/sso/im/dingtalk/")

    assert response.status_code == 400
    assert 'data-reason="no_code"' in response.content.decode()


# --- allauth: WeCom provider end to end -------------------------------------------------------


def test_wecom_provider_through_allauth_login_and_callback(client, api, li_si):
    from allauth.socialaccount.models import SocialAccount

    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")

    start = client.post("/accounts/wecom/login/?next=/approvals/12/")

    assert start.status_code == 302
    url = urlsplit(start["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://login.work.weixin.qq.com/wwlogin/sso/login"
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params["login_type"] == "CorpApp"
    assert params["appid"] == CORP_ID
    assert params["agentid"] == "1000002"
    assert params["redirect_uri"] == "http://testserver/accounts/wecom/login/callback/"

    done = client.get("/accounts/wecom/login/callback/", {"code": "CODE", "state": params["state"]})

    assert done.status_code == 302
    assert done["Location"] == "/approvals/12/"
    assert signed_in_as(client) == str(li_si.pk)
    assert SocialAccount.objects.get(provider="wecom").user == li_si
    assert api.calls() == [("GET", WECOM_TOKEN), ("GET", WECOM_USERINFO)]
    assert query(api.requests[1]) == {"access_token": "accesstoken000001", "code": "CODE"}


def test_wecom_provider_refuses_unknown_identity_without_signing_anyone_up(client, api, django_user_model):
    from allauth.socialaccount.models import SocialAccount

    wecom_answers(api, "getuserinfo_base")
    users_before = django_user_model.objects.count()
    start = client.post("/accounts/wecom/login/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]

    done = client.get("/accounts/wecom/login/callback/", {"code": "CODE", "state": state})

    assert done.status_code == 403
    assert 'data-reason="unknown"' in done.content.decode()
    assert signed_in_as(client) is None
    assert django_user_model.objects.count() == users_before
    assert not SocialAccount.objects.exists()
    assert UnlinkedImUser.objects.filter(platform="wecom", external_id="USERID").exists()


def test_wecom_provider_used_code_is_a_refusal_page(client, api):
    wecom_answers(api, "getuserinfo_invalid_code")
    start = client.post("/accounts/wecom/login/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]

    done = client.get("/accounts/wecom/login/callback/", {"code": "USED", "state": state})

    assert done.status_code == 400
    assert 'data-reason="code_invalid"' in done.content.decode()


def test_slack_userinfo_maps_to_platform_user_with_verified_email_only():
    from sso.adapters import platform_user

    data = {
        "ok": True,
        "sub": "U0R7JM",
        "https://slack.com/user_id": "U0R7JM",
        "https://slack.com/team_id": "T0R7GR",
        "email": "krane@slack-corp.com",
        "email_verified": True,
        "name": "krane",
    }
    who = platform_user("slack", data)
    assert (who.platform, who.tenant, who.external_id, who.email) == (
        "slack",
        "T0R7GR",
        "U0R7JM",
        "krane@slack-corp.com",
    )
    assert platform_user("slack", {**data, "email_verified": False}).email == ""


# --- login page and admin ---------------------------------------------------------------------


def test_login_page_shows_im_buttons_only_when_configured(client, api, settings):
    page = client.get("/accounts/login/?next=/approvals/")
    assert 'data-provider="wecom"' in page.content.decode()
    assert 'data-provider="feishu"' in page.content.decode()
    # The button's redirect to the platform must not be blocked by CSP form-action.
    assert "https://login.work.weixin.qq.com" in page.headers.get("Content-Security-Policy", "")

    settings.SOCIALACCOUNT_PROVIDERS = {}
    assert "data-provider" not in client.get("/accounts/login/").content.decode()


def test_im_identity_admin_lists_filters_and_searches(admin_client, li_si):
    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID", email="li@corp.cn")
    ImIdentity.objects.create(user=li_si, platform="feishu", tenant=FEISHU_TENANT, external_id="ou-1")

    listing = admin_client.get("/admin/sso/imidentity/?platform__exact=wecom")
    assert listing.status_code == 200
    assert "USERID" in listing.content.decode() and "ou-1" not in listing.content.decode()
    for term in ("USERID", "li@corp.cn", "li.si"):
        assert "USERID" in admin_client.get("/admin/sso/imidentity/", {"q": term}).content.decode()
    assert admin_client.get("/admin/sso/imidentity/add/").status_code == 200


def test_login_free_url_for_cards_round_trips(client, api, li_si):
    from sso.im_login.views import login_free_url

    ImIdentity.objects.create(user=li_si, platform="wecom", tenant=CORP_ID, external_id="USERID")
    wecom_answers(api, "getuserinfo_base")
    url = login_free_url("wecom", "/approvals/12/")
    assert url == "http://testserver/sso/im/wecom/?next=%2Fapprovals%2F12%2F"
    with pytest.raises(ValueError):
        login_free_url("wecom", "https://evil.example/")

    to_wecom = client.get(url.removeprefix("http://testserver"))
    state = parse_qs(urlsplit(to_wecom["Location"]).query)["state"][0]
    assert client.get("/sso/im/wecom/", {"code": "CODE", "state": state})["Location"] == "/approvals/12/"


def test_dingtalk_allauth_union_id_is_turned_into_the_staff_userid(api):
    from sso.adapters import platform_user

    api.answer("GET", DINGTALK_TOKEN, recorded("dingtalk", "gettoken"))
    api.answer(
        "POST",
        "https://oapi.dingtalk.com/topapi/user/getbyunionid",
        {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"contact_type": 0, "userid": "userid123"},
            "request_id": "x",
        },
    )
    api.answer("POST", DINGTALK_USER_GET, recorded("dingtalk", "user_get"))
    # contact/users/me, as allauth's DingTalk provider keeps it in extra_data.
    me = {"nick": "zhangsan", "unionId": "gliiW0piiii02zBUjUxxxxxx", "openId": "123", "mobile": "150xxxx9144"}

    who = platform_user("dingtalk", me)

    assert (who.platform, who.tenant, who.external_id, who.email) == (
        "dingtalk",
        DINGTALK_CORP,
        "userid123",
        "test@xxx.com",
    )
    assert body(api.requests[1]) == {"unionid": "gliiW0piiii02zBUjUxxxxxx"}
    assert query(api.requests[1]) == {"access_token": "96fc7a7axxx"}


def test_feishu_allauth_user_info_maps_to_open_id_and_tenant():
    from sso.adapters import platform_user

    who = platform_user("feishu", recorded("feishu", "user_info")["data"])

    assert (who.tenant, who.external_id, who.email) == (
        FEISHU_TENANT,
        "ou-caecc734c2e3328a62489fe0648c4b98779515d3",
        "demo@mail.com",
    )


def test_allauth_errors_use_the_portal_refusal_page(client, api):
    response = client.get("/accounts/wecom/login/callback/", {"code": "CODE", "state": "bogus"})

    assert response.status_code == 401  # allauth answers a lost or forged state with 401
    assert "Sign-in refused" in response.content.decode() or "登录被拒绝" in response.content.decode()
    assert api.requests == []
