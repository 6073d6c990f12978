"""Pages on the hot path (issue #19): bounded queries whatever the number of rows, fragments rendered
once per what they show and never across what two viewers may see, ETag / 304 for live refetches.
Speed itself is measured by bench/fanout.py and bench/run.py; these tests pin the shape."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalDocument
from erp.connectors.demo import services as demo_erp
from foresight.models import ModelRun, SeriesForecast
from inventory.models import StockLevel, StockMove
from sso.models import ErpIdentity, PermissionRule
from widgets.embed import make_embed_token

pytestmark = pytest.mark.django_db

STOCK = "/w/stock/SKU-123/"


def charted(connector, warehouses: int = 2) -> list[StockLevel]:
    """SKU-123 in ``warehouses`` warehouses, each with weeks of moves and a demand forecast: a chart each."""
    template = StockLevel.objects.get(sku="SKU-123", warehouse="SH")
    for n in range(StockLevel.objects.filter(sku="SKU-123").count(), warehouses):
        StockLevel.objects.create(connector=template.connector, sku="SKU-123", name=template.name, unit=template.unit,
                                  warehouse=f"W{n}", warehouse_name=f"仓库 {n}", quantity=100, reserved=0,
                                  safety_level=10)
    levels = list(StockLevel.objects.filter(sku="SKU-123"))
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version=f"hot-{warehouses}")
    now = timezone.now()
    for level in levels:
        for weeks, quantity in ((6, 90), (4, 70), (2, 55)):
            move = StockMove.objects.create(stock=level, quantity=quantity, delta=-5)
            StockMove.objects.filter(pk=move.pk).update(at=now - dt.timedelta(weeks=weeks))
        SeriesForecast.objects.update_or_create(
            connector=connector, sku="SKU-123", warehouse=level.warehouse,
            defaults={"run": run, "method": "ets", "forecast": [5, 6, 5, 7], "sigma": 2.0, "fingerprint": "x",
                      "history_end": timezone.localdate(), "fitted_at": now})
    return levels


def revoke_roles(login: str) -> None:
    """As the ERP sync does: saved, so every process's kept permission reads are retired (sso.snapshot)."""
    identity = ErpIdentity.objects.get(erp_login=login)
    identity.roles = []
    identity.save()


def rendered(response) -> list[str]:
    return [t.name for t in response.templates if t.name]


# --- query budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("warehouses", [2, 12])
def test_stock_widget_with_charts_costs_the_same_queries_for_2_or_12_warehouses(
        client, users, demo, connector, django_assert_max_num_queries, warehouses):
    charted(connector, warehouses)
    client.force_login(users["zhao.liu"])
    # Session, user, profile; the check (groups, identities, rules, delegations); levels, forecasts,
    # moves, chart history. It was 9 + 2 per warehouse.
    with django_assert_max_num_queries(11):
        html = client.get(STOCK).content.decode()
    assert html.count('<figure class="chart-box"') == warehouses
    assert html.count('<polyline class="forecast"') == warehouses


def test_approval_widget_and_page_have_query_budgets(client, users, demo, django_assert_max_num_queries):
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    client.force_login(users["li.si"])
    with django_assert_max_num_queries(10):  # no lines, no history, no user per approver
        widget = client.get(f"/w/approval/{document.pk}/")
    assert widget.status_code == 200 and document.external_id in widget.content.decode()
    # The page shows approvers by name, history and lines, and checks both view and decide.
    with django_assert_max_num_queries(15):
        page = client.get(document.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200 and 'name="outcome" value="approved"' in html
    assert "李四" in html and "张三" in html  # approver and requester by name, read with the document
    with django_assert_max_num_queries(14):
        assert client.get(f"/approvals/{document.pk}/panel/").status_code == 200


# --- fragments ------------------------------------------------------------------------------------


def test_a_widget_body_is_rendered_once_per_state_and_again_when_it_changes(client, users, demo):
    client.force_login(users["zhao.liu"])
    first = client.get(STOCK + "body/")
    assert "widgets/stock_body.html" in rendered(first)
    again = client.get(STOCK + "body/")
    assert "widgets/stock_body.html" not in rendered(again) and again.content == first.content

    demo_erp.adjust_stock("SKU-123", "SH", -3)
    changed = client.get(STOCK + "body/")
    assert "widgets/stock_body.html" in rendered(changed) and changed.content != first.content
    level = StockLevel.objects.get(sku="SKU-123", warehouse="SH")
    assert f"-3 → {int(level.quantity)}" in changed.content.decode()


def test_a_cached_fragment_never_shows_one_viewer_what_another_may_not_see(client, users, demo):
    client.force_login(users["zhao.liu"])
    everything = client.get(STOCK + "body/").content.decode()
    assert 'data-warehouse="SH"' in everything and 'data-warehouse="SZ"' in everything

    rule = PermissionRule.objects.get(name__startswith="库存查看")
    rule.warehouses = ["SZ"]
    rule.save()
    narrowed = client.get(STOCK + "body/").content.decode()
    assert 'data-warehouse="SZ"' in narrowed and 'data-warehouse="SH"' not in narrowed

    # Access gone: 404, whatever sits in the cache. Authorization runs before the cache is asked.
    revoke_roles("zhao.liu")
    gone = client.get(STOCK + "body/")
    assert gone.status_code == 404 and "伺服电机" not in gone.content.decode()


def test_fragments_follow_the_viewers_language(client, users, demo):
    client.force_login(users["zhao.liu"])
    chinese = client.get(STOCK + "body/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    client.cookies["django_language"] = "en"
    english = client.get(STOCK + "body/").content.decode()
    assert "仓库" in chinese and "Warehouse" in english and "仓库" not in english.split("<tbody>")[0]


def test_embedded_widgets_share_no_fragment_with_their_embed_links(client, users, demo):
    token = make_embed_token(users["zhao.liu"], STOCK)
    framed = client.get(STOCK, {"e": token}).content.decode()
    client.force_login(users["zhao.liu"])
    own = client.get(STOCK).content.decode()
    assert token in framed and token not in own  # each body carries its own live source


# --- ETag / 304 -----------------------------------------------------------------------------------


def test_a_live_refetch_of_an_unchanged_widget_is_304_and_a_changed_one_200(client, users, demo):
    client.force_login(users["zhao.liu"])
    page = client.get(STOCK).content.decode()
    first = client.get(STOCK + "body/")
    etag = first["ETag"]
    assert first.status_code == 200 and f'data-live-etag="{etag.strip(chr(34))}"' in page
    unchanged = client.get(STOCK + "body/", HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag
    weak = client.get(STOCK + "body/", HTTP_IF_NONE_MATCH=f"W/{etag}")  # as GZip middleware hands it out
    assert weak.status_code == 304

    demo_erp.adjust_stock("SKU-123", "SZ", 2)
    changed = client.get(STOCK + "body/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag

    revoke_roles("zhao.liu")
    assert client.get(STOCK + "body/", HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 404


def test_the_approval_panel_answers_304_until_the_document_changes(client, users, demo):
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    client.force_login(users["zhang.san"])  # the requester, watching
    panel = f"/approvals/{document.pk}/panel/"
    first = client.get(panel, HTTP_HX_REQUEST="true")
    etag = first["ETag"]
    assert first.status_code == 200 and client.get(panel, HTTP_IF_NONE_MATCH=etag).status_code == 304

    services.decide(users["li.si"], document.pk, "approved", idempotency_key="hot-1")
    decided = client.get(panel, HTTP_IF_NONE_MATCH=etag)
    assert decided.status_code == 200 and decided["ETag"] != etag
    assert 'id="doc-status">已批准</span>' in decided.content.decode()

    # History that grows without a new version (the ERP asking again) is a change too.
    etag = decided["ETag"]
    document.history.create(action="ignored", note="again")
    assert client.get(panel, HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_the_panel_etag_is_per_viewer(client, users, demo):
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    panel = f"/approvals/{document.pk}/panel/"
    client.force_login(users["li.si"])  # may decide: the panel holds a form
    etag = client.get(panel)["ETag"]
    client.force_login(users["zhang.san"])  # may only watch
    assert client.get(panel, HTTP_IF_NONE_MATCH=etag).status_code == 200
