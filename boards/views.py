"""The board of a temporary group, ``/g/<group>/``: thin over ``boards.selectors`` (what a viewer
sees) and ``boards.services`` (what a viewer does). Members come signed in (their session, or a
widget embed token made for this board, as Matrix's OpenID flow answers); guests come with the
cookie their one-time code gave them. Everyone else gets the same 404, whatever the group."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from boards import guests, services
from boards.access import Viewer, is_member
from boards.selectors import board_for
from notifications.models import ChatGroup
from widgets.embed import embed_viewer
from widgets.live import current_version
from widgets.views import frameable

SEEN_FIELDS = ("qty", "promised_date", "confirmed_date", "confirmed_qty", "status", "amount")


def board_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the group and the viewer: a member (session or this board's embed token) or a guest
    (cookie for this group). A guest whose pass no longer holds is told why; anyone else: 404."""

    @wraps(view)
    def wrapped(request: HttpRequest, group_id: int, *args, **kwargs) -> HttpResponse:
        group = ChatGroup.objects.select_related("created_by_rule").filter(pk=group_id).first()
        token = request.GET.get("e", "")
        if group is None:
            # A missing group answers as an existing one does to a stranger: no way to list groups by id.
            if not token and not request.user.is_authenticated and request.method == "GET" and not kwargs.get("part"):
                return redirect(f"/g/{group_id}/join/")
            raise Http404()
        user = embed_viewer(token, request.path) if token else request.user
        request.embed_token = token if token and user is not None else ""
        if user is not None and getattr(user, "is_authenticated", False):
            if not is_member(user, group):
                raise Http404()
            request.viewer = Viewer(user=user)
        else:
            guest = guests.read_cookie(request.COOKIES.get(guests.COOKIE, ""), group.pk)
            if guest is None:
                if token:
                    raise Http404()
                if request.method == "GET" and not kwargs.get("part"):
                    return redirect(f"/g/{group.pk}/join/")  # members sign in from there, guests enter a code
                raise Http404()
            why = guest.refusal()
            if why:
                response = render(request, "boards/refused.html", {"group": group, "why": why}, status=403)
                if not kwargs.get("part"):
                    # Only when the guest opens the board: a refetch in an open tab must not take the
                    # pass away before the guest's next visit has been told why it is refused.
                    response.delete_cookie(guests.COOKIE)
                return response
            request.viewer = Viewer(guest=guest)
        return frameable(view(request, group, *args, **kwargs))

    return wrapped


def _context(request: HttpRequest, group: ChatGroup, part: str = "", **extra) -> dict:
    board = board_for(request.viewer, group, part)
    suffix = f"?e={request.embed_token}" if request.embed_token else ""
    return {
        "board": board, "group": group, "viewer": request.viewer, "embed_token": request.embed_token,
        "version": current_version(board.topic) or 0, "suffix": suffix, "key": secrets.token_hex(8),
        "body_src": f"/g/{group.pk}/body/{suffix}", "stock_src": f"/g/{group.pk}/stock/{suffix}", **extra,
    }


@require_http_methods(["GET"])
@board_view
def board(request: HttpRequest, group: ChatGroup, part: str = "") -> HttpResponse:
    context = _context(request, group, part)
    if part == "body":
        return render(request, "boards/_body.html", context)
    if part == "stock":
        if request.viewer.is_guest:
            raise Http404()  # a guest's view of the item is the rule's shared fields, in the body
        return render(request, "boards/_stock.html", context)
    return render(request, "boards/board.html", context)


def _seen(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST.get(f"seen_{name}", "") for name in SEEN_FIELDS if f"seen_{name}" in request.POST}


@require_POST
@board_view
def act(request: HttpRequest, group: ChatGroup, action: str) -> HttpResponse:
    viewer, post = request.viewer, request.POST
    key = post.get("key", "")[:40] or secrets.token_hex(8)
    if action == "confirm_delivery":
        outcome = services.confirm_delivery(viewer, group, post.get("line", ""), delivery_date=post.get("date", ""),
                                            quantity=post.get("qty", ""), seen_version=post.get("version", ""),
                                            seen=_seen(request), key=key)
    elif action == "expedite":
        outcome = services.expedite(viewer, group, post.get("line", ""), seen_version=post.get("version", ""),
                                    seen=_seen(request), key=key)
    elif action == "raise_requisition":
        outcome = services.raise_requisition(viewer, group, post.get("suggestion", ""))
    elif action == "ask_requester":
        outcome = services.ask_requester(viewer, group, post.get("text", ""), key=key)
    elif action == "decide_claim":
        outcome = services.decide_claim(viewer, group, post.get("outcome", ""), seen_version=post.get("version", ""),
                                        seen=_seen(request), comment=post.get("comment", ""), key=key)
    else:
        raise Http404()
    return render(request, "boards/board.html", _context(request, group, notice=outcome.message, ok=outcome.ok),
                  status=outcome.status)


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, group_id: int) -> HttpResponse:
    """Where an invited guest enters their address and the one-time code from the email. Anyone may
    open it, so it names no group and looks the same for every id until a code opens the board."""
    group = ChatGroup.objects.filter(pk=group_id).first()
    error = ""
    if request.method == "POST":
        try:
            if group is None:
                raise guests.Refused(guests.not_opened())
            _guest, cookie = guests.redeem(group, request.POST.get("email", ""), request.POST.get("code", ""))
        except guests.Refused as exc:
            error = str(exc)
        else:
            response = redirect(f"/g/{group.pk}/")
            # Not a session: a signed pass id, HttpOnly, sent only by this browser, useless off the board.
            response.set_cookie(guests.COOKIE, cookie, max_age=guests.pass_hours(group) * 3600, httponly=True,
                                samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
            return response
    return render(request, "boards/join.html", {"group_id": group_id, "error": error}, status=403 if error else 200)



