from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BoardsConfig(AppConfig):
    name = "boards"
    verbose_name = _("Group boards")

    def ready(self) -> None:
        from boards import cards, presence, signals  # noqa: F401 - connects the receivers
        from boards.retention import register
        from widgets.topics import register_guest_resolver, register_guest_topic, register_presence, register_topic

        register_topic("board", presence.may_watch_board)
        register_guest_topic("board", presence.guest_may_watch_board)
        register_guest_topic("item", presence.guest_may_watch_item)
        register_presence("board", presence.join, presence.leave, presence.heartbeat)
        register_guest_resolver(presence.resolve_guest)
        register()
        from im.cards import register_card_kind

        register_card_kind("boardq", cards.build)
        from boards.selectors import board_topics
        from widgets.embed import register_embed_topics

        register_embed_topics("boards", None, lambda args, user: board_topics(int(args["group_id"])))
