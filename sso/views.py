from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
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
    """Exchange a card-link token for a session, then show the page it points at."""
    try:
        user, target = redeem_link_token(token, request.user)
    except LinkTokenError as exc:
        if exc.code == "used" and request.user.is_authenticated:
            # The recipient tapping their own card again: they are signed in already.
            return redirect(_safe(request, exc.target))
        messages.warning(request, MESSAGES[exc.code])
        query = {"next": _safe(request, exc.target)} if exc.target else {}
        url = reverse("login") + ("?" + urlencode(query) if query else "")
        return redirect(url)
    # login() gives the browser a new session key, so a planted session id is worthless.
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(_safe(request, target))


def _safe(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("approvals:mine")
