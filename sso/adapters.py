"""allauth adapters: IM sign-in maps to existing portal users through ``ImIdentity``; nobody signs up.

Every provider's answer becomes a ``PlatformUser`` and goes through ``sso.im_login.identity.resolve``,
the same path as the login-free codes, so the two can never disagree about who someone is.
"""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.http import HttpRequest

from sso.im_login.base import ExchangeError, PlatformUser, app_config
from sso.im_login.identity import Unlinked, resolve

log = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    """Accounts come from the ERP and admins, never from a public sign-up form."""

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Find (or link) the portal user, or stop here with the refusal page."""
        from sso.im_login.views import refused

        provider = sociallogin.account.provider
        try:
            who = platform_user(provider, sociallogin.account.extra_data)
            config = app_config(provider)
            expected = ""
            if config is not None:
                expected = str(config.settings.get("tenant", "")) or (config.client_id if provider == "wecom" else "")
            user = resolve(who, expected_tenant=expected)
        except ExchangeError as exc:
            log.warning("IM sign-in with %s refused: %s", provider, exc)
            raise ImmediateHttpResponse(refused(request, exc.reason, provider)) from exc
        except Unlinked as exc:
            raise ImmediateHttpResponse(refused(request, exc.reason, provider)) from exc

        if sociallogin.is_existing:
            if sociallogin.user.pk != user.pk:
                # An admin re-pointed the IM identity: the IM identity wins over allauth's own record.
                sociallogin.account.user = user
                sociallogin.account.save(update_fields=["user"])
                sociallogin.user = user
        else:
            sociallogin.connect(request, user)


def platform_user(provider: str, data: dict[str, Any]) -> PlatformUser:
    """What each allauth provider's ``extra_data`` says, as a PlatformUser (raises ExchangeError)."""
    if provider == "wecom":
        return PlatformUser(**{k: str(data.get(k) or "") for k in PlatformUser.__dataclass_fields__})
    if provider == "feishu":
        from sso.im_login.base import exchange_class

        feishu = exchange_class("feishu")
        if feishu is None:
            raise ExchangeError("not_configured", "feishu")
        return feishu.user_from_info(data)
    if provider == "dingtalk":
        # contact/users/me gives the unionId; messages and 免登 use the staff userid.
        from sso.im_login.base import get_exchange

        exchange = get_exchange("dingtalk")
        if exchange is None or not data.get("unionId"):
            raise ExchangeError("not_configured", "dingtalk")
        userid = exchange.userid_by_unionid(data["unionId"])  # type: ignore[attr-defined]
        who = exchange.user(userid, name=data.get("nick", ""))  # type: ignore[attr-defined]
        return PlatformUser(
            platform=who.platform,
            tenant=who.tenant,
            external_id=who.external_id,
            email=who.email or data.get("email", ""),
            mobile=who.mobile or data.get("mobile", ""),
            name=who.name,
        )
    if provider == "slack":
        # OpenID Connect userInfo: the email counts only when Slack says it is verified.
        verified = str(data.get("email_verified", "")).lower() == "true"
        user_id = data.get("https://slack.com/user_id") or data.get("sub") or ""
        if not user_id:
            raise ExchangeError("platform_error", "slack userInfo without a user id")
        return PlatformUser(
            platform="slack",
            tenant=data.get("https://slack.com/team_id", ""),
            external_id=user_id,
            email=data.get("email", "") if verified else "",
            name=data.get("name", ""),
        )
    raise ExchangeError("not_configured", provider)
