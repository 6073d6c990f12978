from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BotConfig(AppConfig):
    name = "bot"
    label = "bot"
    verbose_name = _("Chat bot")

    def ready(self) -> None:
        from bot import cards, inbound, retention
        from im.cards import register_card_kind
        from im.messages import register_message_handler
        from trust.retention import delete_rows, register_retention_kind

        # Bot replies travel as cards of topic "bot.<exchange id>" through the normal outbox, so a
        # confirm button pressed on any platform comes back through handle_card_action.
        register_card_kind("bot", cards.build, cards.handle_action)
        register_retention_kind(
            "bot_exchanges", retention.bot_exchanges_due, delete_rows, label=_("bot exchanges"), per_platform=True
        )
        # Whatever people write to the portal on any platform is a question for the bot.
        register_message_handler(inbound.answer_message)
