"""Link sessions: what a card-link token grants, and nothing more.

A card link (``/s/<token>/``) is a message, not a key. Exchanging it gives this browser a *link
session*: for ``LINK_SESSION_SECONDS`` the browser acts as the card's recipient on the one page the
link names (its panel refetches, its decision POST, its websocket topics) and is anonymous everywhere
else (pending list, bulk approval, other widgets, the API, other documents). The grant lives in the
Django session (``link_grants``), beside nothing else: it is not a login.

Deciding through a link session needs proof that the person tapping is the recipient: the platform's
own proof (``register_platform_proof``; the dev inbox's phone sign-in), or the check configured for
the link's platform in admin (``LinkDecisionCheck``: the recipient's password, or a full sign-in).
Platforms with login-free identity never get such links: their cards carry ``login_free_url()``
(``card_link_for``), so the platform proves who taps.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

SESSION_KEY = "link_grants"
MAX_GRANTS = 5  # a few cards tapped in one webview; the oldest grant goes first

# Platforms whose cards carry a login-free link instead of a link token (the platform proves who taps).
LOGIN_FREE_PLATFORMS = ("wecom", "feishu", "dingtalk", "slack")


@dataclass(frozen=True)
class LinkPage:
    """A page a card link may grant: its own sub-paths and the live topics it shows."""

    pattern: re.Pattern
    subpaths: tuple[str, ...]
    topics: Callable[[dict[str, str]], set[str]]


@dataclass(frozen=True)
class LinkGrant:
    user_id: int
    target: str
    platform: str
    jti: str
    expires: float

    def as_dict(self) -> dict[str, Any]:
        return {"u": self.user_id, "t": self.target, "p": self.platform, "j": self.jti, "x": self.expires}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkGrant:
        return cls(int(data["u"]), str(data["t"]), str(data.get("p", "")), str(data["j"]), float(data["x"]))

    @property
    def alive(self) -> bool:
        return time.time() < self.expires

    def covers(self, path: str) -> bool:
        """``path`` (decoded, as ``request.path_info``) is the granted page or one of its sub-paths."""
        page = page_for(self.target)
        target = unquote(self.target)
        return page is not None and (path == target or path in {target + s for s in page[0].subpaths})

    def topics(self) -> set[str]:
        page = page_for(self.target)
        return page[0].topics(page[1]) if page else set()


_pages: list[LinkPage] = []
_platform_proofs: dict[str, Callable[[HttpRequest, Any], bool]] = {}
_code_sender: Callable[..., bool] | None = None


def register_link_page(pattern: str, *, subpaths: Iterable[str] = (), topics: Callable[[dict], set[str]]) -> None:
    """Apps name the pages a card link may open (``pattern`` matches the whole path)."""
    _pages.append(LinkPage(re.compile(pattern), tuple(subpaths), topics))


def register_code_sender(send: Callable[..., bool]) -> None:
    """How a one-time code reaches the recipient's IM: ``send(user, platform, *, topic, title, note, key)``
    → sent or not. im registers it (``ImConfig.ready``); this module never imports im."""
    global _code_sender
    _code_sender = send


def register_platform_proof(platform: str, proof: Callable[[HttpRequest, Any], bool]) -> None:
    """A platform that proves in this browser who its user is (the dev inbox's phone sign-in)."""
    _platform_proofs[platform] = proof


def page_for(target: str) -> tuple[LinkPage, dict[str, str]] | None:
    for page in _pages:
        match = page.pattern.fullmatch(unquote(target))
        if match:
            return page, match.groupdict()
    return None


def grants(session: Any) -> list[LinkGrant]:
    """The live grants of a session (expired ones are ignored)."""
    found = []
    for raw in session.get(SESSION_KEY, []) if session is not None else []:
        try:
            grant = LinkGrant.from_dict(raw)
        except (KeyError, TypeError, ValueError):
            continue
        if grant.alive:
            found.append(grant)
    return found


def add_grant(session: Any, grant: LinkGrant) -> None:
    kept = [g.as_dict() for g in grants(session) if g.jti != grant.jti]
    session[SESSION_KEY] = [*kept, grant.as_dict()][-MAX_GRANTS:]


def new_grant(user: Any, target: str, platform: str, jti: str) -> LinkGrant:
    return LinkGrant(user.pk, target, platform, jti, time.time() + settings.LINK_SESSION_SECONDS)


def grant_for_path(session: Any, path: str) -> LinkGrant | None:
    for grant in reversed(grants(session)):
        if grant.covers(path):
            return grant
    return None


def _user(user_id: int) -> Any | None:
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


class LinkSessionMiddleware:
    """On the one page a grant names, an anonymous browser acts as the grant's recipient; anywhere else
    it stays anonymous (and so is asked to sign in). A real sign-in always wins over a grant."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        request.link_session = None
        if not request.user.is_authenticated and SESSION_KEY in request.session:
            grant = grant_for_path(request.session, request.path_info)
            user = _user(grant.user_id) if grant else None
            if user is not None:
                request.user = user
                request.link_session = grant
        return self.get_response(request)


def link_session_context(request: HttpRequest) -> dict[str, Any]:
    """Templates: ``link_session`` (the grant of this page, or None) for the banner."""
    return {"link_session": getattr(request, "link_session", None)}


# --- websocket ------------------------------------------------------------------------------------


def socket_grants(session: Any) -> list[tuple[Any, set[str], float]]:
    """(recipient, topics, expires) of each live grant of a websocket's session (sync: reads the db)."""
    found = []
    for grant in grants(session):
        user = _user(grant.user_id)
        if user is not None:
            found.append((user, grant.topics(), grant.expires))
    return found


# --- deciding through a link session ---------------------------------------------------------------


def decision_check(request: HttpRequest) -> str:
    """What a decision on this request still needs: "" (nothing: a real sign-in, or the platform proved
    who taps), "password" (the recipient's password) or "signin" (a full sign-in)."""
    grant = getattr(request, "link_session", None)
    if grant is None:
        return ""
    proof = _platform_proofs.get(grant.platform)
    if proof is not None and proof(request, request.user):
        return ""
    from sso.models import LinkDecisionCheck

    return LinkDecisionCheck.check_for(grant.platform)


CODES_KEY = "link_codes"
CODE_SECONDS = 300
CODE_SENDS = 3  # codes a grant may ask for
CODE_TRIES = 5  # wrong codes before the code is void


def _code_hash(code: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{code}".encode()).hexdigest()


def send_code(request: HttpRequest, grant: LinkGrant) -> str:
    """Send a one-time code to the recipient's IM on the link's platform; returns what to tell the tapper."""
    from django.utils import translation
    from django.utils.translation import gettext as _

    from sso.models import language_of

    codes = request.session.get(CODES_KEY, {})
    state = codes.get(grant.jti, {"sends": 0})
    if state["sends"] >= CODE_SENDS:
        return _("Too many codes asked for. Sign in instead.")
    code = f"{secrets.randbelow(10**6):06d}"
    with translation.override(language_of(request.user)):
        sent = _code_sender is not None and _code_sender(
            request.user, grant.platform, topic=f"linkcode.{grant.jti}",
            title=_("Your confirmation code: %(code)s") % {"code": code},
            note=_("Someone opened your card link and asked to decide. If it was not you, ignore this."),
            key=f"linkcode:{grant.jti}:{state['sends']}")
    if not sent:
        return _("The code cannot be sent to your IM. Sign in instead.")
    codes[grant.jti] = {"sends": state["sends"] + 1, "h": _code_hash(code), "x": time.time() + CODE_SECONDS,
                        "tries": 0}
    request.session[CODES_KEY] = codes
    return _("A code was sent to your IM. Enter it to decide. Nothing was decided yet.")


def _code_matches(request: HttpRequest, grant: LinkGrant, code: str) -> bool:
    codes = request.session.get(CODES_KEY, {})
    state = codes.get(grant.jti)
    if not state or "h" not in state or time.time() > state["x"] or state["tries"] >= CODE_TRIES:
        return False
    if hmac.compare_digest(state["h"], _code_hash(code.strip())):
        state.pop("h")  # one use
        request.session[CODES_KEY] = codes
        return True
    state["tries"] += 1
    request.session[CODES_KEY] = codes
    return False


def verify_decision(request: HttpRequest) -> str | None:
    """None when a decision on this request may go ahead; else the (translated) reason it may not."""
    from django.utils.translation import gettext as _

    needed = decision_check(request)
    if not needed:
        return None
    if needed == "code":
        grant = request.link_session
        if request.POST.get("link_send_code"):
            return send_code(request, grant)
        code = request.POST.get("link_code", "")
        if code and _code_matches(request, grant, code):
            return None
        if code:
            return _("That code is not right or has expired. Nothing was decided.")
        return _("Ask for a code, then enter it to confirm it is you. Nothing was decided.")
    if needed == "password":
        password = request.POST.get("link_password", "")
        if password:
            try:
                proved = authenticate(request, username=request.user.get_username(), password=password)
            except PermissionDenied:  # django-axes: too many failures from here
                return _("Too many wrong passwords. Sign in again later.")
            if proved is not None and proved.pk == request.user.pk:
                return None
            return _("That password is not right. Nothing was decided.")
        return _("Enter your password to confirm it is you. Nothing was decided.")
    return _("Sign in to decide. Nothing was decided.")


# --- what a card's "Open" link is on each platform -------------------------------------------------


def login_free_link(platform: str, target: str) -> str | None:
    """The platform's own proof-of-who-taps link to ``target``, when the platform has one configured."""
    if platform not in LOGIN_FREE_PLATFORMS:
        return None
    if platform == "slack":
        # Sign in with Slack (OpenID Connect, allauth): the tapper proves their Slack account.
        if "slack" not in settings.SOCIALACCOUNT_PROVIDERS:
            return None
        from django.utils.http import urlencode

        return f"{settings.PORTAL_BASE_URL}/accounts/slack/login/?" + urlencode({"process": "login", "next": target})
    from sso.im_login.base import get_exchange
    from sso.im_login.views import login_free_url

    return login_free_url(platform, target) if get_exchange(platform) is not None else None


def card_link_for(platform: str, link: str, recipient: Any = None) -> str:
    """A card's "Open" link as ``platform`` should carry it.

    Card builders do not know the platform: they make a card-link token for the recipient. Here a
    platform with login-free identity gets ``login_free_url()`` instead (nothing in the message then
    signs anyone in), and every other platform a token that names it, so the link session knows which
    decision check applies.
    """
    from sso.tokens import LinkTokenError, make_link_url, read_link_token

    prefix = settings.PORTAL_BASE_URL + "/s/"
    if not platform or not link.startswith(prefix):
        return link
    token = link[len(prefix):].split("?")[0].rstrip("/")
    try:
        claims = read_link_token(token)
    except LinkTokenError:
        return link
    free = login_free_link(platform, claims.target)
    if free is not None:
        return free
    if claims.platform == platform:
        return link
    # The card's recipient is the token's user (read again only when the caller did not pass them).
    known = recipient is not None and recipient.pk == claims.user_id and recipient.is_active
    user = recipient if known else _user(claims.user_id)
    return make_link_url(user, claims.target, platform=platform) if user is not None else link
