"""The one small interface every IM adapter implements (``im/adapters/<platform>/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from im.cards import Card


class TransportError(Exception):
    """Sending failed. ``permanent`` errors are not retried; ``retry_after`` honours a 429."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class SentMessage:
    message_id: str


class ImAdapter(Protocol):
    platform: str

    def address_of(self, user: Any) -> str | None:
        """The user's id on this platform, or None when they have no linked account here."""

    def send_card(self, address: str, card: Card, *, idempotency_key: str) -> SentMessage:
        """Send ``card`` to one recipient; raise TransportError on failure.

        The same ``idempotency_key`` twice must not post twice where the platform allows it.
        """

    def update_card(self, address: str, message_id: str, card: Card) -> None:
        """Replace a sent card in place (buttons gone, new status)."""
