"""Who may watch a board's live topic, and who is watching it now (presence over the same socket)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from boards.access import Viewer, guest_viewer, is_member
from boards.models import BoardPresence
from notifications.models import ChatGroup
from sso.authz import Verdict
from sso.models import display_name
from widgets.live import publish_now
from widgets.topics import version_of

REFUSED = Verdict(False, "not a member of this group")


def _group(ident: str) -> ChatGroup | None:
    return ChatGroup.objects.filter(pk=int(ident)).first() if ident.isdigit() else None


def may_watch_board(user: Any, ident: str) -> Verdict:
    group = _group(ident)
    if group is None or not is_member(user, group):
        return REFUSED
    return Verdict(True, "member of the group")


def guest_may_watch_board(viewer: Viewer, ident: str) -> Verdict:
    guest = viewer.guest
    guest.refresh_from_db()  # revoked or expired since the socket opened: refused at the next push
    if str(guest.group_id) != ident or guest.refusal():
        return REFUSED
    return Verdict(True, "guest of the group")


def guest_may_watch_item(viewer: Viewer, sku: str) -> Verdict:
    """A guest may hear that the group's own item changed (the refetch then shows only shared fields)."""
    from boards.selectors import stock_subject

    verdict = guest_may_watch_board(viewer, str(viewer.guest.group_id))
    level = stock_subject(viewer.guest.group) if verdict else None
    return Verdict(True, "the group's item") if level is not None and level.sku == sku else REFUSED


def _viewer_name(viewer: Any) -> tuple[str, str]:
    if isinstance(viewer, Viewer):
        return viewer.name, viewer.key
    return display_name(viewer), f"user:{viewer.pk}"


def join(viewer: Any, topic: str, channel_name: str) -> None:
    group = _group(topic.partition(".")[2])
    if group is None:
        return
    name, key = _viewer_name(viewer)
    try:
        BoardPresence.objects.get_or_create(group=group, channel_name=channel_name[:200],
                                            defaults={"viewer_name": name[:150], "viewer_key": key})
    except IntegrityError:
        return
    publish_now(topic, version_of(timezone.now()))


def leave(viewer: Any, topic: str, channel_name: str) -> None:
    group = _group(topic.partition(".")[2])
    if group is None:
        return
    deleted, _rows = BoardPresence.objects.filter(group=group, channel_name=channel_name[:200]).delete()
    if deleted:
        publish_now(topic, version_of(timezone.now()))


def heartbeat(viewer: Any, topic: str, channel_name: str) -> None:
    """The socket still watches: its row is fresh (and back, if a sweep took it during a long pause)."""
    group = _group(topic.partition(".")[2])
    if group is None:
        return
    if not BoardPresence.objects.filter(group=group, channel_name=channel_name[:200]).update(seen_at=timezone.now()):
        join(viewer, topic, channel_name)


def sweep(now: dt.datetime | None = None) -> int:
    """Rows whose socket stopped beating (its process died without a disconnect) go, and the boards
    they were on are told. Stale after three missed heartbeats."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=3 * settings.PRESENCE_HEARTBEAT_SECONDS)
    stale = BoardPresence.objects.filter(seen_at__lt=cutoff)
    groups = sorted(set(stale.values_list("group_id", flat=True)))
    deleted, _rows = stale.delete()
    for group_id in groups:
        publish_now(f"board.{group_id}", version_of(timezone.now()))
    return deleted


def resolve_guest(cookies: dict[str, str]) -> Viewer | None:
    from boards.guests import COOKIE, guest_from_cookie

    guest = guest_from_cookie(cookies.get(COOKIE, ""))
    return guest_viewer(guest) if guest is not None else None
