"""Messages people write to the portal on an IM platform (not button presses): im hands them to
whoever registered a message handler, today the chat bot (``BotConfig.ready``). im itself never
imports the bot: without a handler a message is simply not answered.

The callers (the inbound callback task, Matrix's sync loop, the dev inbox's phones and group chats)
have already verified the sender and resolved them to a portal user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    platform: str
    sender: Any  # the portal user the platform says wrote it
    text: str
    conversation: str  # "<platform>:<chat>": follow-up questions are understood within one conversation
    # In a group chat: its id on the platform and everyone who reads the answer there (portal users,
    # AnonymousUser for members the portal does not know). None: a direct message.
    chat_id: str = ""
    audience: list[Any] | None = None


# Answers the message (through the outbox or the adapter) and returns what was answered, for logs and
# the caller's page; None when it did not answer.
MessageHandler = Callable[[IncomingMessage], str | None]

_handlers: list[MessageHandler] = []


def register_message_handler(handler: MessageHandler) -> None:
    """Take messages written to the portal (idempotent per handler)."""
    if handler not in _handlers:
        _handlers.append(handler)


def has_message_handler() -> bool:
    return bool(_handlers)


def deliver_message(message: IncomingMessage) -> str | None:
    """The first registered handler that answers; None when no handler answers (or none is registered)."""
    for handler in _handlers:
        answer = handler(message)
        if answer is not None:
            return answer
    logger.info("%s message from %s not answered: no handler took it", message.platform, message.sender)
    return None
