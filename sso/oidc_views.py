"""The two OIDC sign-in pages: start (→ the provider) and callback (← the provider). 404 while OIDC is off."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from sso.oidc import OidcError, discovery, oidc_setting, safe_next

log = logging.getLogger("sso.oidc")

FAILED = _("Sign-in with your company account failed. Please try again, or sign in with your password.")
UNAVAILABLE = _("Sign-in with your company account is not available right now. Please sign in with your password.")
NEXT_KEY = "oidc_login_next"


def _login_page(next_url: str | None) -> HttpResponseRedirect:
    query = "?" + urlencode({"next": next_url}) if next_url else ""
    return HttpResponseRedirect(reverse("login") + query)


class OidcLoginView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider; ``next`` (a local path only) waits in the session."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the parent reads the endpoints here; we read them per request

    OIDC_OP_AUTH_ENDPOINT = property(lambda self: self.get_settings("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        next_url = safe_next(request, request.GET.get("next"))
        try:
            response = super().get(request)
        except OidcError as exc:
            log.error("OIDC sign-in unavailable: %s", exc)
            messages.error(request, UNAVAILABLE)
            return _login_page(next_url)
        # The library would keep an absolute same-host URL too; the portal keeps local paths only.
        request.session[NEXT_KEY] = next_url
        return response


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back. Any refusal lands on the sign-in page with a message."""

    get_settings = staticmethod(oidc_setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404
        try:
            # RFC 9207: a provider that names itself in the answer must be ours (mix-up attacks).
            iss = request.GET.get("iss")
            if iss is not None and iss != discovery()["issuer"]:
                raise SuspiciousOperation(f"authorization response from issuer {iss!r}")
            return super().get(request)
        except OidcError as exc:
            log.error("OIDC sign-in unavailable: %s", exc)
            return self.login_failure()
        except SuspiciousOperation as exc:
            # A state this browser never started or has used already: a replayed or forged callback.
            log.warning("OIDC callback refused: %s", exc)
            return self.login_failure()

    @property
    def success_url(self) -> str:
        return self.request.session.pop(NEXT_KEY, None) or resolve_url(settings.LOGIN_REDIRECT_URL)

    def login_failure(self) -> HttpResponse:
        refusal = getattr(self.request, "oidc_refusal", "")
        if refusal:
            log.info("OIDC sign-in failed: %s", refusal)
        messages.error(self.request, FAILED)
        return _login_page(self.request.session.pop(NEXT_KEY, None))
