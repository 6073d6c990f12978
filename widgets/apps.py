from django.apps import AppConfig


def _order_topics(match: dict) -> set[str]:
    from inventory.models import SalesOrder

    pk = SalesOrder.objects.filter(external_id=match["number"]).values_list("pk", flat=True).first()
    return {f"order.{pk}"} if pk else set()


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
        register_link_page(r"/w/order/(?P<number>[^/]+)/", subpaths=body, topics=_order_topics)
        register_link_page(r"/w/receivables/(?P<scope>[^/]+)/(?P<name>[^/]+)/", subpaths=body,
                           topics=_receivables_topics)
        register_link_page(r"/w/approval/(?P<pk>\d+)/", subpaths=body, topics=lambda m: {f"approval.{m['pk']}"})
