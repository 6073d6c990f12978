from django.apps import AppConfig


def _receivables_topics(match: dict) -> set[str]:
    from urllib.parse import unquote

    from widgets.topics import scope_topic

    return {scope_topic("receivables", match["scope"], unquote(match["name"]))}


class WidgetsConfig(AppConfig):
    name = "widgets"
    verbose_name = "Widgets"

    def ready(self) -> None:
        from sso.links import register_link_page

        # A card link may open one widget (its body refetches and its live topic); never the list of
        # pending approvals, which asks for a real sign-in.
        body = ("body/",)
        register_link_page(r"/w/stock/(?P<sku>[^/]+)/", subpaths=body, topics=lambda m: {f"item.{m['sku']}"})
        register_link_page(r"/w/receivables/(?P<scope>[^/]+)/(?P<name>[^/]+)/", subpaths=body,
                           topics=_receivables_topics)
        register_link_page(r"/w/approval/(?P<pk>\d+)/", subpaths=body, topics=lambda m: {f"approval.{m['pk']}"})

        from widgets.embed import register_embed_topics
        from widgets.topics import scope_topic

        register_embed_topics("widgets", "stock", lambda args, user: frozenset({f"item.{args['sku']}"}))
        register_embed_topics("widgets", "receivables",
                              lambda args, user: frozenset({scope_topic("receivables", args["scope"], args["name"])}))
        register_embed_topics("widgets", "approval", lambda args, user: frozenset({f"approval.{args['pk']}"}))
        register_embed_topics("widgets", "pending", lambda args, user: frozenset({f"inbox.{user.pk}"}))
