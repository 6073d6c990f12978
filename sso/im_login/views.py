"""``GET /sso/im/<platform>/?code=…&next=…``: login-free sign-in inside an IM client.

Without a code, platforms that have an authorize redirect (WeCom, Feishu) are sent there and come
back with one; ``next`` travels in the signed ``state``. DingTalk pages get the code with
``dd.getAuthCode`` and call this URL themselves.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sso.im_login.base import ExchangeError, get_exchange
from sso.im_login.identity import Unlinked, resolve

log = logging.getLogger(__name__)

STATE_SALT = "sso.im-login.state.v1"
STATE_MAX_AGE = 10 * 60  # the platforms' codes live 5 minutes; the round trip must fit

PLATFORM_NAMES = {"wecom": _("WeCom"), "feishu": _("Feishu"), "dingtalk": _("DingTalk"), "slack": _("Slack")}
REFUSALS = {
    "not_configured": (404, _("Sign-in with this platform is not set up.")),
    "no_code": (400, _("The sign-in code is missing. Open the page again from the app.")),
    "code_invalid": (400, _("This sign-in code has expired or was already used. Open the page again from the app.")),
    "not_member": (403, _("The platform did not identify you as a member of the company.")),
    "platform_error": (502, _("The platform could not confirm who you are just now. Please try again in a moment.")),
    "unknown": (
        403,
        _(
            "Your account on this platform is not linked to a portal user yet. An administrator has been told; "
            "please ask them to link it."
        ),
    ),
    "ambiguous": (
        403,
        _(
            "Your email or mobile matches more than one portal user, so your account could not be linked "
            "automatically. An administrator has been told."
        ),
    ),
    "inactive": (403, _("Your portal user is disabled.")),
}


def refused(request: HttpRequest, reason: str, platform: str = "") -> HttpResponse:
    """The page a refused sign-in shows: why, and what to do (never a 500)."""
    status, message = REFUSALS.get(reason, REFUSALS["platform_error"])
    context = {"message": message, "reason": reason, "platform_name": PLATFORM_NAMES.get(platform, platform)}
    return render(request, "sso/im_login_refused.html", context, status=status)


def safe_next(request: HttpRequest, target: str) -> str:
    """``target`` when it is a path on this site; otherwise the home page (no open redirect)."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    ):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def callback_url(platform: str) -> str:
    """The fixed redirect_uri registered with the platform (its trusted domain must match)."""
    return settings.PORTAL_BASE_URL + reverse("sso:im-login", args=[platform])


def login_free_url(platform: str, target: str) -> str:
    """The absolute link an IM card can carry: signs its tapper in by a platform code, then opens ``target``.

    Unlike a card-link token it proves who taps it, so a forwarded card signs nobody in as someone else.
    """
    if not target.startswith("/") or target.startswith("//"):
        raise ValueError("a link target is a local path")
    return callback_url(platform) + "?" + urlencode({"next": target})


@never_cache
@require_GET
def login_free(request: HttpRequest, platform: str) -> HttpResponse:
    exchange = get_exchange(platform)
    if exchange is None:
        return refused(request, "not_configured", platform)
    next_url = request.GET.get("next", "")
    state = request.GET.get("state", "")
    if state:
        try:
            next_url = signing.loads(state, salt=STATE_SALT, max_age=STATE_MAX_AGE).get("n", "")
        except (signing.BadSignature, AttributeError):
            return refused(request, "code_invalid", platform)
    code = request.GET.get("code") or request.GET.get("authCode", "")
    if not code:
        state = signing.dumps({"n": safe_next(request, next_url)}, salt=STATE_SALT)
        url = exchange.authorize_url(callback_url(platform), state)
        return redirect(url) if url else refused(request, "no_code", platform)

    try:
        who = exchange.exchange(code, redirect_uri=callback_url(platform) if state else "")
        user = resolve(who, expected_tenant=exchange.expected_tenant())
    except ExchangeError as exc:
        log.warning("login-free %s refused: %s", platform, exc)
        return refused(request, exc.reason, platform)
    except Unlinked as exc:
        return refused(request, exc.reason, platform)
    # login() cycles the session key (or flushes another user's session): a planted id is worthless.
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(safe_next(request, next_url))
