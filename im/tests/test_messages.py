"""Messages written to the portal reach whoever registered a message handler; im imports no bot."""

from im import messages
from im.messages import IncomingMessage, deliver_message, register_message_handler


def test_the_bot_registers_its_handler():
    from bot.inbound import answer_message

    assert answer_message in messages._handlers


def test_a_message_goes_to_the_first_handler_that_answers(monkeypatch):
    monkeypatch.setattr(messages, "_handlers", [])
    assert deliver_message(IncomingMessage("devinbox", object(), "hi", "devinbox:1")) is None  # nobody listens
    seen = []
    register_message_handler(lambda message: seen.append(("silent", message.text)) and None)
    register_message_handler(lambda message: f"answer to {message.text} in {message.conversation}")
    register_message_handler(lambda message: "never asked")
    assert deliver_message(IncomingMessage("devinbox", object(), "hi", "devinbox:1")) == "answer to hi in devinbox:1"
    assert seen == [("silent", "hi")]


def test_registering_twice_keeps_one(monkeypatch):
    monkeypatch.setattr(messages, "_handlers", [])

    def handler(message):
        return "x"

    register_message_handler(handler)
    register_message_handler(handler)
    assert messages._handlers == [handler]
