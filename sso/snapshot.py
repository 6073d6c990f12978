"""Who is who, kept per process: the reads every permission check needs, valid while a shared stamp holds.

``sso.permissions`` asks here for the enabled rules with their users and groups, a user's principal
(group ids, ERP roles per connector, departments) and a user's delegations. Each is read from the
database once and kept in this process, filed under the **generation stamp** it was read with: an
integer in the Django cache (Redis in production, shared by every process; in-process in the embedded
default). Every change that can alter a verdict bumps the stamp (``connect`` below; the writers that a
signal does not see bump it themselves with ``bump()``), and a kept read is used only while the stamp
is the one it was filed under and it is younger than ``PERMISSION_CACHE_SECONDS`` (default 5; 0 turns
all this off: every check reads the database, as before). A check reads the stamp once (``pinned``).

Why a reader never keeps using a read made before a change once the change is visible:

- A reader reads the stamp *before* it reads the database and files the rows under that stamp.
- A writer bumps the stamp *after* its transaction commits (``on_commit``). So any reader that sees
  the new stamp read the database after the commit: its rows hold the change. A read filed under an
  older stamp stops being used at the next check that sees the bump, in every process.
- The writer bumps at once as well, before the commit: readers elsewhere then re-read (and may still
  see the old rows, which is why the bump after commit is the one that counts).
- Meanwhile the writer's own connection sees rows nobody else can see yet, and a rollback would undo
  them: while its transaction is open, it reads fresh and files nothing (``_dirty``).

Writes no signal reports (``QuerySet.update``, raw SQL by an operator, another deployment sharing the
database but not the cache, a process on the in-process cache) are seen within
``PERMISSION_CACHE_SECONDS``. If the cache cannot be reached the stamp is unknown: reads go to the
database. Nothing about documents is kept here, only who is who.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save

log = logging.getLogger(__name__)

STAMP_KEY = "sso:permissions:generation"
MAX_ENTRIES = 20_000  # one per user seen plus the rules; past this the process starts over


def _clock() -> float:
    """Seconds, for the age of a kept read (tests replace it)."""
    return time.monotonic()


def max_age() -> float:
    return float(getattr(settings, "PERMISSION_CACHE_SECONDS", 5))


@dataclass(frozen=True)
class Who:
    """What the rules need to know about one user (``Principal`` adds the user object)."""

    group_ids: frozenset[int] = frozenset()
    roles: frozenset[tuple[int, str]] = frozenset()  # (connector id, role)
    departments: frozenset[str] = frozenset()


# key -> (stamp, read at (_clock), value). Keys: "rules", ("who", user pk), ("delegations", user pk),
# ("erp login", (connector pk, login)), ("im identity", (user pk, platform)), ("kept", key).
_entries: dict[Any, tuple[int, float, Any]] = {}
_warned_at = -1e9
_pinned: contextvars.ContextVar[int | None] = contextvars.ContextVar("permission_stamp", default=None)


def forget() -> None:
    """Drop what this process keeps (the shared stamp stays): as a freshly started process."""
    _entries.clear()


# --- the stamp ------------------------------------------------------------------------------------------


def _read_stamp() -> int | None:
    try:
        stamp = cache.get(STAMP_KEY)
        if stamp is None:
            # Evicted, flushed or never set: a random start, so that a stamp from before can never
            # come back and revive reads filed under it.
            cache.add(STAMP_KEY, secrets.randbits(62), timeout=None)
            stamp = cache.get(STAMP_KEY)
    except Exception:  # the cache is down: read the database, as without this module
        global _warned_at
        if time.monotonic() - _warned_at > 60:  # once a minute, not at every check
            _warned_at = time.monotonic()
            log.warning("permission cache stamp unreadable; reading permissions fresh", exc_info=True)
        return None
    return stamp


def _dirty(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """This thread's open transaction changed who-is-who rows: they are its own until it commits."""
    connection = transaction.get_connection(alias)
    if not getattr(connection, "permissions_written", False):
        return False
    if connection.in_atomic_block:
        return True
    connection.permissions_written = False  # committed (bumped then) or rolled back: over
    return False


def current_stamp() -> int | None:
    """The stamp to file and use reads under, or None: read the database and keep nothing."""
    if max_age() <= 0 or _dirty():
        return None
    pinned = _pinned.get()
    return pinned if pinned is not None else _read_stamp()


@contextlib.contextmanager
def pinned() -> Iterator[None]:
    """One stamp read for everything inside (a check, a batch); nested blocks keep the outer one."""
    if _pinned.get() is not None or max_age() <= 0:
        yield
        return
    token = _pinned.set(_read_stamp())
    try:
        yield
    finally:
        _pinned.reset(token)


def _bump_now() -> None:
    _entries.clear()  # this process at once, even if the shared cache is unreachable
    try:
        try:
            cache.incr(STAMP_KEY)
        except ValueError:  # not set (evicted, flushed): any new random value will do
            cache.set(STAMP_KEY, secrets.randbits(62), timeout=None)
    except Exception:  # noqa: BLE001 - a write must not fail for this; the age bound still holds
        log.exception("permission cache stamp not bumped; other processes see the change within %ss", max_age())


def bump(using: str = DEFAULT_DB_ALIAS) -> None:
    """Something that can change a verdict was written on ``using``: bump now and after the commit."""
    _bump_now()
    connection = transaction.get_connection(using)
    if connection.in_atomic_block:
        connection.permissions_written = True
        transaction.on_commit(_after_commit(connection), using=using)


def _after_commit(connection: Any) -> Callable[[], None]:
    def after() -> None:
        connection.permissions_written = False
        _bump_now()

    return after


# --- kept reads -----------------------------------------------------------------------------------------


def _kept(key: Any, stamp: int) -> tuple[bool, Any]:
    entry = _entries.get(key)
    if entry is None or entry[0] != stamp or _clock() - entry[1] >= max_age():
        return False, None
    return True, entry[2]


def _keep(key: Any, stamp: int, read_at: float, value: Any) -> None:
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[key] = (stamp, read_at, value)


def rules() -> list[tuple[Any, frozenset[int], frozenset[int]]]:
    """Every enabled rule (by name) with the ids of the users and the groups it names."""
    stamp = current_stamp()
    if stamp is None:
        return load_rules()
    found, value = _kept("rules", stamp)
    if not found:
        read_at = _clock()
        value = load_rules()
        _keep("rules", stamp, read_at, value)
    return value


def _per_key(kind: str, keys: Iterable[Any], load: Callable[[list[Any]], dict[Any, Any]]) -> dict[Any, Any]:
    """``load(missing keys)`` (a value for every key) kept per ``(kind, key)``: a user pk, or any key."""
    ids = list(dict.fromkeys(keys))
    stamp = current_stamp()
    if stamp is None:
        return load(ids)
    result, missing = {}, []
    for pk in ids:
        found, value = _kept((kind, pk), stamp)
        if found:
            result[pk] = value
        else:
            missing.append(pk)
    if missing:
        read_at = _clock()
        loaded = load(missing)
        for pk in missing:
            _keep((kind, pk), stamp, read_at, loaded[pk])
        result.update(loaded)
    return result


def im_identities(keys: Iterable[tuple[int, str]],
                  load: Callable[[list[tuple[int, str]]], dict[tuple[int, str], Any]]) -> dict[tuple[int, str], Any]:
    """Per (user pk, platform), the user's account on that IM platform as ``load`` read it (or None):
    where a worker sends their cards (a saved or deleted ``ImIdentity`` bumps the stamp)."""
    return _per_key("im identity", keys, load)


def erp_identities(connector_id: int, logins: Iterable[str],
                   load: Callable[[list[str]], dict[str, Any]]) -> dict[str, Any]:
    """Per ERP login of one connector, what ``load`` (a value for every login it is given) said of it:
    who holds that login is who-is-who (an ``ErpIdentity`` or a user's ``is_active`` saved bumps the
    stamp), and a worker's every batch asks it again for the same approvers."""
    found = _per_key("erp login", [(connector_id, login) for login in logins],
                      lambda keys: {(connector_id, login): value
                                    for login, value in load([login for _c, login in keys]).items()})
    return {login: value for (_connector, login), value in found.items()}


def principals(user_ids: Iterable[int]) -> dict[int, Who]:
    return _per_key("who", user_ids, load_principals)


def delegations(user_ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    """Per delegate, the delegations not yet ended when read (with their delegator): whether one is in
    force is for the caller to say at the moment of use, so one starting or ending later counts to the
    second without a new read."""
    return _per_key("delegations", user_ids, load_delegations)


def delegations_from(delegator_ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    """Per delegator, the delegations not yet ended when read (with their delegate), in force or not:
    the caller decides at the moment of use (new approval cards also go to an approver's delegate)."""
    return _per_key("delegations from", delegator_ids, load_delegations_from)


def kept(key: Any, load: Callable[[], Any]) -> Any:
    """``load()`` kept in this process under the stamp, like the rules: for other configuration the hot
    path reads and admins edit (notification rules), whose model is ``watch``ed so that a change bumps the
    stamp. Return values that callers will not change (rows, not model instances they might cache on)."""
    stamp = current_stamp()
    if stamp is None:
        return load()
    found, value = _kept(("kept", key), stamp)
    if not found:
        read_at = _clock()
        value = load()
        _keep(("kept", key), stamp, read_at, value)
    return value


def watch(*models: Any) -> None:
    """A save or delete of these models bumps the stamp (for what ``kept`` keeps of them)."""
    for model in models:
        post_save.connect(_on_change, sender=model, dispatch_uid=f"permcache-{model._meta.label}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"permcache-{model._meta.label}")


# --- the reads ------------------------------------------------------------------------------------------


def load_rules() -> list[tuple[Any, frozenset[int], frozenset[int]]]:
    from sso.models import PermissionRule

    found = {rule.pk: (rule, set(), set()) for rule in PermissionRule.objects.filter(enabled=True).order_by("name")}
    for rule_id, user_id in PermissionRule.users.through.objects.filter(permissionrule_id__in=list(found)).values_list(
        "permissionrule_id", "user_id"
    ):
        found[rule_id][1].add(user_id)
    for rule_id, group_id in PermissionRule.groups.through.objects.filter(
        permissionrule_id__in=list(found)
    ).values_list("permissionrule_id", "group_id"):
        found[rule_id][2].add(group_id)
    return [(rule, frozenset(users), frozenset(groups)) for rule, users, groups in found.values()]


def load_principals(user_ids: list[int]) -> dict[int, Who]:
    from sso.models import ErpIdentity

    groups: dict[int, set[int]] = {pk: set() for pk in user_ids}
    roles: dict[int, set[tuple[int, str]]] = {pk: set() for pk in user_ids}
    departments: dict[int, set[str]] = {pk: set() for pk in user_ids}
    for user_id, group_id in get_user_model().groups.through.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "group_id"
    ):
        groups[user_id].add(group_id)
    for user_id, connector_id, held, department in ErpIdentity.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "connector_id", "roles", "department"
    ):
        roles[user_id].update((connector_id, role) for role in held or [])
        if department:
            departments[user_id].add(department)
    return {pk: Who(frozenset(groups[pk]), frozenset(roles[pk]), frozenset(departments[pk])) for pk in user_ids}


def load_delegations(user_ids: list[int], now: datetime | None = None) -> dict[int, tuple[Any, ...]]:
    """Per delegate, the delegations not yet ended (with their delegator), by start."""
    return _load_delegations("delegate", user_ids, now, ("starts_at", "pk"))


def load_delegations_from(user_ids: list[int], now: datetime | None = None) -> dict[int, tuple[Any, ...]]:
    """Per delegator, the delegations not yet ended (with their delegate)."""
    return _load_delegations("delegator", user_ids, now, ("pk",))


def _load_delegations(side: str, user_ids: list[int], now: datetime | None, order: tuple[str, ...],
                      ) -> dict[int, tuple[Any, ...]]:
    from django.utils import timezone

    from sso.models import Delegation

    other = "delegator" if side == "delegate" else "delegate"
    found: dict[int, list[Any]] = {pk: [] for pk in user_ids}
    for delegation in (Delegation.objects.filter(**{f"{side}_id__in": user_ids}, ends_at__gt=now or timezone.now())
                       .select_related(other).order_by(*order)):
        found[getattr(delegation, f"{side}_id")].append(delegation)
    return {pk: tuple(rows) for pk, rows in found.items()}


# --- who bumps ------------------------------------------------------------------------------------------


def _on_change(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    bump(using)


def _on_user_saved(sender: Any, update_fields: Any = None, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    # A sign-in saves last_login (update_fields) many times a day; that changes no verdict.
    if update_fields is None or "is_active" in update_fields:
        bump(using)


def _on_members_changed(sender: Any, action: str, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        bump(using)


def _on_migrated(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    # Data migrations write through historical models, which send no signals we listen to.
    if sender.name == "sso":
        bump(using)


def connect() -> None:
    from django.contrib.auth.models import Group

    from sso.models import Delegation, ErpIdentity, ImIdentity, PermissionRule

    User = get_user_model()
    for model in (PermissionRule, ErpIdentity, Delegation, ImIdentity):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"permcache-{model._meta.label}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"permcache-{model._meta.label}")
    post_save.connect(_on_user_saved, sender=User, dispatch_uid="permcache-user")
    # Deleting a user or a group also deletes its memberships and rule links, which send no signal.
    post_delete.connect(_on_change, sender=User, dispatch_uid="permcache-user")
    post_delete.connect(_on_change, sender=Group, dispatch_uid="permcache-group")
    for through in (PermissionRule.users.through, PermissionRule.groups.through, User.groups.through):
        m2m_changed.connect(_on_members_changed, sender=through, dispatch_uid=f"permcache-{through._meta.label}")
    post_migrate.connect(_on_migrated, dispatch_uid="permcache-migrate")
