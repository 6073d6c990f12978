"""The one small interface every IM adapter implements (``im/platforms/<platform>/``).

Required: ``address_of``, ``send_card``, ``update_card``. The rest are capabilities a platform may
lack. Like ERP connectors, an adapter declares what it implements in ``capabilities`` and callers ask
``supports(adapter, GROUPS)`` instead of probing with ``getattr``; a declared capability that the
platform refuses at run time (a group message past its recall window) still raises ``Unsupported``
(callers then fall back, e.g. to one card per person instead of a group chat).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from im.cards import Card

# --- capabilities (the methods each one stands for) ---
THREADS = "threads"  # reply_in_thread
TEXT = "text"  # send_text
GROUPS = "groups"  # create_group, add_members, send_card_to_chat
WIDGETS = "widgets"  # post_widget
ARCHIVE = "archive"  # archive_group
RECALL = "recall"  # delete_message
CALLBACKS = "callbacks"  # parse_callback: inline actions (buttons) and messages come back
ANSWER = "answer"  # answer: tell the person who pressed a button, in place
EXTERNAL_MEMBERS = "external_members"  # external_address: guests (a supplier) join groups by e-mail

CAPABILITY_METHODS: dict[str, tuple[str, ...]] = {
    THREADS: ("reply_in_thread",),
    TEXT: ("send_text",),
    GROUPS: ("create_group", "add_members", "send_card_to_chat"),
    WIDGETS: ("post_widget",),
    ARCHIVE: ("archive_group",),
    RECALL: ("delete_message",),
    CALLBACKS: ("parse_callback",),
    ANSWER: ("answer",),
    EXTERNAL_MEMBERS: ("external_address",),
}


def supports(adapter: Any, capability: str) -> bool:
    """Whether the adapter declares ``capability`` (see ``CAPABILITY_METHODS``)."""
    return capability in getattr(adapter, "capabilities", frozenset())


class LinkedIdentityAddress:
    """``address_of`` for platforms whose users are linked to portal users through ``sso.ImIdentity``:
    the first identity of the user on ``platform``, or None (no linked account there: no card)."""

    platform: str

    def address_of(self, user: Any) -> str | None:
        return linked_external_id(user, self.platform)


def linked_external_id(user: Any, platform: str) -> str | None:
    read = _identities_read.get()
    if read is not None and (user.pk, platform) in read:
        return read[(user.pk, platform)]
    from sso.models import ImIdentity

    identity = ImIdentity.objects.filter(user=user, platform=platform).order_by("pk").first()
    return identity.external_id if identity else None


_identities_read: contextvars.ContextVar[dict[tuple[int, str], str | None] | None] = contextvars.ContextVar(
    "identities_read_once", default=None)


@contextlib.contextmanager
def identities_read_once(users: Iterable[Any], platforms: Iterable[str]) -> Iterator[None]:
    """Inside this block ``linked_external_id`` answers for ``users`` × ``platforms`` from one query (the
    recipients of a batch of sends), where each card would read its recipient's identity again; the
    answers are kept per process by ``sso.snapshot`` under the stamp a saved or deleted ``ImIdentity``
    bumps, so a worker's next batch to the same people reads nothing."""
    from sso import snapshot
    from sso.models import ImIdentity

    user_ids, platforms = {u.pk for u in users if u is not None}, set(platforms)

    def load(keys: list[tuple[int, str]]) -> dict[tuple[int, str], str | None]:
        found: dict[tuple[int, str], str | None] = dict.fromkeys(keys)
        rows = (ImIdentity.objects.filter(user_id__in={pk for pk, _p in keys}, platform__in={p for _pk, p in keys})
                .order_by("-pk").values_list("user_id", "platform", "external_id"))
        for user_id, platform, external_id in rows:
            if (user_id, platform) in found:
                found[(user_id, platform)] = external_id  # the first (lowest pk) wins, as one by one
        return found

    read = snapshot.im_identities([(pk, p) for pk in user_ids for p in platforms], load)
    token = _identities_read.set(read)
    try:
        yield
    finally:
        _identities_read.reset(token)


class TransportError(Exception):
    """Sending failed. ``permanent`` errors are not retried; ``retry_after`` honours a 429."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Unsupported(Exception):
    """The platform (or this adapter) cannot do this."""


class CallbackRejected(Exception):
    """An inbound callback failed verification (signature, timestamp window, decryption): answer
    ``status`` (401 or 400) and do nothing else."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    # What the platform needs to recall or delete the message later, when that is not the message id
    # (WeCom's ``msgid`` beside a template card's task id). Empty: the message id is enough, or nothing is.
    recall_id: str = ""


@dataclass(frozen=True)
class GroupChat:
    chat_id: str


@dataclass(frozen=True)
class InboundEvent:
    """What a verified callback means, platform-neutral.

    ``kind``: "card_action" (a button; ``message_id`` and ``action_id`` set), "message" (text to the
    bot; ``text``, and ``chat_id`` when in a group), "url_verification" (the platform checking the
    endpoint; ``reply`` is what to answer), or "ignored".
    """

    kind: str
    sender: str = ""  # the platform user id; resolved to a portal user through sso.ImIdentity
    tenant: str = ""
    message_id: str = ""
    action_id: str = ""
    text: str = ""
    chat_id: str = ""
    reply: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class ImAdapter(Protocol):
    platform: str
    capabilities: frozenset[str]

    def address_of(self, user: Any) -> str | None:
        """The user's id on this platform, or None when they have no linked account here."""

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        """Send ``card`` to one recipient; raise TransportError on failure.

        The same ``idempotency_key`` twice must not post twice where the platform allows it.
        """

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        """Replace a sent card in place (buttons gone, new status)."""

    # --- capabilities (raise Unsupported when absent) ---

    def reply_in_thread(self, address: str, message_id: str, text: str) -> SentMessage:
        """Answer under a sent message (the bot's replies, "已私信给你")."""

    def send_text(self, address: str, text: str, *, idempotency_key: str) -> SentMessage:
        """A plain text message to one person."""

    def create_group(self, name: str, members: list[str], *, idempotency_key: str) -> GroupChat:
        """A group chat with these platform users (a low-stock war room)."""

    def add_members(self, chat_id: str, members: list[str]) -> None:
        """Invite more people into a group chat."""

    def send_card_to_chat(self, chat_id: str, card: Card, *, idempotency_key: str) -> SentMessage:
        """A card into a group chat: only data every member may see (the caller's job)."""

    def post_widget(self, chat_id: str, title: str, url: str) -> None:
        """Pin a live widget into a chat (a Matrix widget, an H5 link card, a Slack unfurl)."""

    def delete_message(self, address: str, message_id: str, *, recall_id: str = "") -> None:
        """Recall or delete a sent message on the platform (retention). Raise Unsupported where the
        platform cannot; a TransportError that is permanent means "gone or never will be"."""

    def parse_callback(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> InboundEvent:
        """Verify (signature, time window, decryption) and parse an inbound callback; raise
        CallbackRejected when it does not verify. Must be fast: the view answers within the
        platform's deadline and does the work in a task."""
