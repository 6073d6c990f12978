from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext_lazy as _

from sso.tokens import LinkTokenError, redeem_link_token

MESSAGES = {
    "expired": _("This link has expired. Please sign in."),
    "invalid": _("This link is not valid. Please sign in."),
    "used": _("This link has already been used. Please sign in."),
    "wrong_user": _("This link was sent to another person. Sign in with your own account."),
}


def link(request: HttpRequest, token: str) -> HttpResponse:
    """Exchange a card-link token for a link session on the one page it names (never a login)."""
    try:
        target = redeem_link_token(token, request)
    except LinkTokenError as exc:
        messages.warning(request, MESSAGES[exc.code])
        query = {"next": _safe(request, exc.target)} if exc.target else {}
        url = reverse("login") + ("?" + urlencode(query) if query else "")
        return redirect(url)
    return redirect(_safe(request, target))


def im_sign_in_cancelled(request: HttpRequest) -> HttpResponse:
    """Someone pressed "cancel" on the platform's consent page: back to the sign-in page, saying so."""
    messages.info(request, _("Sign-in with the IM platform was cancelled."))
    return redirect("login")


def im_sign_in_error(request: HttpRequest) -> HttpResponse:
    """The platform's answer could not be used (a bad state, a refused code): the refusal page."""
    from sso.im_login.views import refused

    return refused(request, "code_invalid")


def im_sign_up_closed(request: HttpRequest) -> HttpResponse:
    """Nobody signs up: accounts come from the ERP and the admins (``sso.adapters``)."""
    from sso.im_login.views import refused

    return refused(request, "unknown")


class SocialAppMissingMiddleware:
    """``/accounts/<provider>/login/`` (and its callback) for a platform nobody configured: the
    refusal page "not set up" (404), not allauth's ``SocialApp.DoesNotExist`` as a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from allauth.socialaccount.models import SocialApp

        if not isinstance(exception, SocialApp.DoesNotExist):
            return None
        from sso.im_login.views import refused

        return refused(request, "not_configured")


def _safe(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("approvals:mine")
