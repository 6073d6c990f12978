"""Who is looking at a board: a signed-in member (a portal user) or a guest (a pass, no account)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boards.models import GuestPass
from notifications.models import ChatGroup
from sso.models import display_name


@dataclass(frozen=True)
class Viewer:
    user: Any = None
    guest: GuestPass | None = None

    # A guest viewer travels where a user would (the websocket scope); it is never authenticated, so
    # authorize() and restrict() refuse it everything: only the board's own guest checks admit it.
    is_authenticated = False
    is_active = False
    pk = None

    @property
    def is_guest(self) -> bool:
        return self.guest is not None

    @property
    def name(self) -> str:
        return self.guest.name if self.guest else display_name(self.user)

    @property
    def live_key(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        return f"guest:{self.guest.pk}" if self.guest else f"user:{self.user.pk}"


def is_member(user: Any, group: ChatGroup) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and group.members.filter(user=user).exists())


def guest_viewer(guest: GuestPass) -> Viewer:
    return Viewer(guest=guest)


def viewer_for(user: Any, group: ChatGroup) -> Viewer | None:
    """A member of ``group`` (or their guest pass for it); anyone else sees no board at all."""
    guest = getattr(user, "guest", None)
    if guest is not None:
        return user if guest.group_id == group.pk and not guest.refusal() else None
    return Viewer(user=user) if is_member(user, group) else None
