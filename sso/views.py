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


def _safe(request: HttpRequest, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("approvals:mine")
