"""Who may subscribe to which live topic. Each app registers a check for its topic kind."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from sso.authz import Verdict


def scope_topic(kind: str, scope: str, name: str) -> str:
    """Topic idents must be short ASCII; customer and project names are neither."""
    digest = hashlib.sha1(f"{scope}:{name}".encode()).hexdigest()[:16]  # noqa: S324 - a name, not a secret
    return f"{kind}.{scope}-{digest}"


def version_of(moment) -> int:
    """A topic version for aggregates (an item in all warehouses, a customer's receivables): the
    newest change, in milliseconds. Increases with every change, as a document's version does."""
    return int(moment.timestamp() * 1000) if moment else 0


TopicCheck = Callable[[Any, str], Verdict]
_checks: dict[str, TopicCheck] = {}
# Kinds whose every version is a state of its own (a document decided, then written back): pushed at
# once, never held back to coalesce a burst. Aggregates (an item's stock) coalesce.
_immediate: set[str] = set()
# Guests (a group board's external members: no portal account) may watch only the kinds registered
# here, each with a check of its own; every other kind refuses them without asking its check.
_guest_checks: dict[str, TopicCheck] = {}
# Presence: called when a socket starts / stops watching a topic of the kind (who is looking now), and
# every PRESENCE_HEARTBEAT_SECONDS while it watches (so rows of a process that died can be swept).
PresenceHook = Callable[[Any, str, str], None]
_presence: dict[str, tuple[PresenceHook, PresenceHook, PresenceHook | None]] = {}


def register_topic(kind: str, check: TopicCheck, *, coalesce: bool = True) -> None:
    _checks[kind] = check
    if coalesce:
        _immediate.discard(kind)
    else:
        _immediate.add(kind)


def coalesces(topic: str) -> bool:
    """Whether pushes of ``topic`` wait LIVE_COALESCE_SECONDS to merge a burst into one."""
    return topic.partition(".")[0] not in _immediate


def register_guest_topic(kind: str, check: TopicCheck) -> None:
    _guest_checks[kind] = check


def register_presence(kind: str, join: PresenceHook, leave: PresenceHook,
                      heartbeat: PresenceHook | None = None) -> None:
    _presence[kind] = (join, leave, heartbeat)


# Who a socket without a portal user speaks for, from its cookies (a board guest's pass); None: nobody.
_guest_resolvers: list[Callable[[dict[str, str]], Any]] = []


def register_guest_resolver(resolver: Callable[[dict[str, str]], Any]) -> None:
    if resolver not in _guest_resolvers:
        _guest_resolvers.append(resolver)


def guest_viewer_from(cookies: dict[str, str]) -> Any:
    for resolver in _guest_resolvers:
        viewer = resolver(cookies)
        if viewer is not None:
            return viewer
    return None


def presence_hooks(topic: str) -> tuple[PresenceHook, PresenceHook, PresenceHook | None] | None:
    return _presence.get(topic.partition(".")[0])


# A socket's session may prove more than its sign-in (the dev inbox: phones unlocked in this
# browser). Each provider maps a session to (viewer, topics): those topics are asked as that viewer.
SocketViewers = Callable[[Any], list[tuple[Any, set[str]]]]
_socket_viewers: list[SocketViewers] = []


def register_socket_viewers(provider: SocketViewers) -> None:
    _socket_viewers.append(provider)


def socket_viewers(session: Any) -> list[tuple[Any, set[str]]]:
    """(viewer, topics) a websocket's session proves, from every registered provider (sync: reads the db)."""
    return [found for provider in _socket_viewers for found in provider(session)]


def may_subscribe(user: Any, topic: str) -> Verdict:
    kind, _, ident = topic.partition(".")
    check = (_guest_checks if getattr(user, "is_guest", False) else _checks).get(kind)
    if check is None or not ident:
        return Verdict(False, "unknown topic")
    return check(user, ident)
