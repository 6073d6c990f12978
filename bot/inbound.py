"""The bot's message handler, registered with im in ``BotConfig.ready``: whatever a person writes to
the portal on any platform (a direct message, or a group message addressed to the bot) is a question."""

from __future__ import annotations

from bot.services import answer_in_group, ask, reply_on
from im.messages import IncomingMessage
from im.platforms import get_adapter


def answer_message(message: IncomingMessage) -> str | None:
    """A direct question is answered privately through the outbox; in a group, the public part goes to
    the chat (what every member may see) and the rest to the asker (``answer_in_group``)."""
    if message.audience is not None:
        reply = answer_in_group(get_adapter(message.platform), message.chat_id, message.sender,
                                message.audience, message.text)
    else:
        reply = ask(message.sender, message.text, conversation=message.conversation, channel=message.platform)
        reply_on(message.platform, message.sender, reply)
    return reply.text or reply.intent
