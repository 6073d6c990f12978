"""Widgets: per-viewer content, signed embed links, framing rules, and live pushes that are checked
again on every push, resume after a reconnect and coalesce bursts."""

from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from approvals.models import ApprovalDocument
from erp.connectors.demo import services as demo_erp
from inventory.models import StockLevel
from sso.models import ErpIdentity, PermissionRule
from widgets.consumers import LiveConsumer
from widgets.embed import make_embed_token
from widgets.live import current_version
from widgets.topics import scope_topic

pytestmark = pytest.mark.django_db

STOCK = "/w/stock/SKU-123/"


def test_stock_widget_shows_each_viewer_their_own_warehouses(client, users, demo):
    client.force_login(users["zhao.liu"])  # 仓库管理员: all warehouses
    html = client.get(STOCK).content.decode()
    assert "伺服电机" in html and 'data-warehouse="SH"' in html and 'data-warehouse="SZ"' in html

    rule = PermissionRule.objects.get(name__startswith="库存查看")
    rule.warehouses = ["SZ"]
    rule.save()
    html = client.get(STOCK).content.decode()
    assert 'data-warehouse="SZ"' in html and 'data-warehouse="SH"' not in html

    client.force_login(users["chen.qi"])  # 销售: no stock at all
    refused = client.get(STOCK)
    assert refused.status_code == 404 and "伺服电机" not in refused.content.decode()
    assert client.get("/w/stock/SKU-NOPE/").status_code == 404


def test_low_stock_is_highlighted_and_moves_are_listed(client, users, demo):
    client.force_login(users["zhao.liu"])
    level = StockLevel.objects.get(sku="SKU-123", warehouse="SH")
    demo_erp.adjust_stock("SKU-123", "SH", -int(level.quantity))  # empty the Shanghai warehouse
    html = client.get(STOCK + "body/").content.decode()
    assert 'class="low" data-warehouse="SH"' in html
    assert f"-{int(level.quantity)} → 0" in html


def test_receivables_widget_shows_a_sales_rep_only_their_customers(client, users, demo):
    client.force_login(users["chen.qi"])
    own = client.get("/w/receivables/customer/华东电子/")
    assert own.status_code == 200
    html = own.content.decode()
    assert "INV-2026-0288" in html and "INV-2026-0301" in html
    house = client.get("/w/receivables/customer/ACME Corp/")
    assert house.status_code == 404 and "INV-2026-0290" not in house.content.decode()
    project = client.get("/w/receivables/project/项目B/").content.decode()
    assert "INV-2026-0305" in project and "INV-2026-0290" not in project  # 项目B, but ACME's invoice hidden

    client.force_login(users["wang.wu"])  # 财务经理 sees every customer
    html = client.get("/w/receivables/project/项目B/").content.decode()
    assert "INV-2026-0290" in html and "INV-2026-0305" in html

    client.force_login(users["zhao.liu"])
    assert client.get("/w/receivables/customer/华东电子/").status_code == 404


def test_order_widget_has_a_timeline(client, users, demo):
    demo_erp.set_order_status("SO-2026-0815", "delivered")
    client.force_login(users["chen.qi"])
    html = client.get("/w/order/SO-2026-0815/").content.decode()
    timeline = html[html.index('class="timeline"'):]
    assert timeline.index("shipped") < timeline.index("delivered")
    assert client.get("/w/order/SO-2026-0816/").status_code == 404  # ACME: house account


def test_approval_and_pending_widgets(client, users, demo):
    from approvals.models import ApprovalDocument

    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    client.force_login(users["li.si"])
    assert "紧急采购" in client.get(f"/w/approval/{document.pk}/").content.decode()
    assert "PR-2026-0042" in client.get("/w/pending/").content.decode()
    client.force_login(users["chen.qi"])
    assert client.get(f"/w/approval/{document.pk}/").status_code == 404
    assert "PR-2026-0042" not in client.get("/w/pending/").content.decode()


# --- embedding ------------------------------------------------------------------------------


def test_an_embed_token_opens_its_widget_without_a_session(client, users, demo):
    token = make_embed_token(users["zhao.liu"], STOCK)
    page = client.get(STOCK, {"e": token})
    assert page.status_code == 200 and "伺服电机" in page.content.decode()
    assert f'data-embed="{token}"' in page.content.decode()
    assert client.get(STOCK + "body/", {"e": token}).status_code == 200  # its own refetches
    # Nothing else: not another widget, not a page, and no session was created.
    assert client.get("/w/pending/", {"e": token}).status_code == 403
    assert client.get("/approvals/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_tampered_expired_and_foreign_embed_tokens_are_refused(client, users, demo, settings):
    token = make_embed_token(users["zhao.liu"], STOCK)
    assert client.get(STOCK, {"e": token[:-2] + "xx"}).status_code == 403
    settings.WIDGET_EMBED_MAX_AGE = 60
    from unittest import mock

    with mock.patch("django.core.signing.time.time", return_value=dt.datetime.now().timestamp() + 120):
        assert client.get(STOCK, {"e": token}).status_code == 403  # two minutes later: expired
    # The token speaks for zhao.liu only: chen.qi's permissions never come into it, and a token
    # made for chen.qi shows nothing chen.qi may not see.
    assert client.get(STOCK, {"e": make_embed_token(users["chen.qi"], STOCK)}).status_code == 404


def test_widgets_may_be_framed_only_by_configured_im_origins(client, users, demo, settings):
    settings.WIDGET_FRAME_ANCESTORS = ["https://work.weixin.qq.com", "http://localhost:9999"]
    client.force_login(users["zhao.liu"])
    widget = client.get(STOCK)
    assert "frame-ancestors https://work.weixin.qq.com http://localhost:9999" in widget["Content-Security-Policy"]
    assert "X-Frame-Options" not in widget
    page = client.get("/approvals/")
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"
    settings.WIDGET_FRAME_ANCESTORS = []
    assert "frame-ancestors 'none'" in client.get(STOCK)["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/approvals/1/", "https://evil.example/w/x/", "/w/../admin/", "/w/stock/a?b=c",
                                  "/w/stock\\evil/", ""])
def test_the_matrix_bootstrap_page_only_opens_widget_paths(client, db, path):
    response = client.get("/w/matrix/", {"path": path, "widgetId": "w1"})
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_the_matrix_bootstrap_page_is_frameable_by_the_im_origins_and_needs_no_session(client, db, settings):
    settings.WIDGET_FRAME_ANCESTORS = ["https://app.element.io"]
    response = client.get("/w/matrix/", {"path": "/w/stock/SKU-123/", "widgetId": "w1"})
    assert response.status_code == 200
    assert "frame-ancestors https://app.element.io" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert 'data-path="/w/stock/SKU-123/"' in html and "matrix-widget-api.min.js" in html
    assert "伺服电机" not in html  # no data before the homeserver vouched for the viewer


# --- live -----------------------------------------------------------------------------------


async def socket_for(user=None, token: str = "") -> WebsocketCommunicator:
    path = "/ws/live/" + (f"?e={token}" if token else "")
    communicator = WebsocketCommunicator(LiveConsumer.as_asgi(), path)
    communicator.scope["user"] = user if user is not None else AnonymousUser()
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.fixture
def live_world(transactional_db, settings):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    settings.LIVE_COALESCE_SECONDS = 0.2
    setup_demo()
    return {u.username: u for u in get_user_model().objects.all()}


async def subscribe(ws, topic: str, **extra) -> None:
    await ws.send_json_to({"subscribe": topic, **extra})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": topic}


@pytest.mark.django_db(transaction=True)
async def test_a_burst_of_stock_moves_is_one_push(live_world, settings):
    # Each move is handled in its own savepoint, so the burst is still 60 group sends after the commit
    # (item and warehouse topics); a loaded machine can spread those over more than 0.2 s.
    settings.LIVE_COALESCE_SECONDS = 1.0
    ws = await socket_for(live_world["zhao.liu"])
    await subscribe(ws, "item.SKU-123")

    def burst():
        # One transaction: the 30 changes are published at its commit, however slow each move is on a
        # loaded machine (spread over more than the coalescing window, a later version is rightly
        # pushed again).
        with transaction.atomic():
            for _ in range(30):
                demo_erp.adjust_stock("SKU-123", "SH", 1)

    await sync_to_async(burst)()
    first = await ws.receive_json_from(timeout=5)
    assert first["topic"] == "item.SKU-123"
    assert await ws.receive_nothing(timeout=1.5)
    await ws.disconnect()


def revoke_roles(login: str) -> None:
    """As the ERP sync does: saved, so every process's kept permission reads are retired (sso.snapshot)."""
    identity = ErpIdentity.objects.get(erp_login=login)
    identity.roles = []
    identity.save()


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_who_loses_access_while_watching_is_told_and_gets_nothing_more(live_world):
    ws = await socket_for(live_world["zhao.liu"])
    await subscribe(ws, "item.SKU-123")
    await sync_to_async(revoke_roles)("zhao.liu")
    await sync_to_async(demo_erp.adjust_stock)("SKU-123", "SH", 1)
    assert await ws.receive_json_from(timeout=3) == {"revoked": "item.SKU-123"}
    await sync_to_async(demo_erp.adjust_stock)("SKU-123", "SH", 1)
    assert await ws.receive_nothing(timeout=0.6)
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_client_coming_back_learns_what_it_missed(live_world):
    await sync_to_async(demo_erp.adjust_stock)("SKU-123", "SH", 1)
    seen = await sync_to_async(current_version)("item.SKU-123")
    # The socket is away while three changes happen.
    for _ in range(3):
        await sync_to_async(demo_erp.adjust_stock)("SKU-123", "SZ", 1)
    latest = await sync_to_async(current_version)("item.SKU-123")
    assert latest > seen
    ws = await socket_for(live_world["zhao.liu"])
    await subscribe(ws, "item.SKU-123", since=seen)
    assert await ws.receive_json_from(timeout=2) == {"topic": "item.SKU-123", "version": latest}
    await ws.send_json_to({"subscribe": "item.SKU-123", "since": latest})
    assert await ws.receive_json_from(timeout=2) == {"subscribed": "item.SKU-123"}
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_framed_widget_subscribes_with_its_embed_token(live_world):
    token = await sync_to_async(make_embed_token)(live_world["zhao.liu"], STOCK)
    ws = await socket_for(token=token)
    await subscribe(ws, "item.SKU-123")
    await ws.disconnect()

    refused = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/?e=forged")
    refused.scope["user"] = AnonymousUser()
    connected, code = await refused.connect()
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_receivables_topics_follow_payments(live_world):
    ws = await socket_for(live_world["chen.qi"])
    topic = scope_topic("receivables", "customer", "华东电子")
    await subscribe(ws, topic)
    await sync_to_async(demo_erp.record_payment)("INV-2026-0301", "1000.00")
    pushed = await ws.receive_json_from(timeout=3)
    assert pushed["topic"] == topic
    await ws.disconnect()


# --- one token, one widget ----------------------------------------------------------------------


def _legacy_token(user, path: str) -> str:
    """A token as the portal signed them before they named one page: a path prefix such as ``/w/``."""
    from django.core import signing

    from widgets.embed import SALT

    return signing.dumps({"u": user.pk, "p": path}, salt=SALT, compress=True)


def test_an_embed_token_names_one_exact_widget(client, users, demo):
    keeper = users["zhao.liu"]
    with pytest.raises(ValueError):
        make_embed_token(keeper, "/w/")
    for path in ("/w/pending/body/", "/w/matrix/", "/approvals/1/", "/w/stock/"):
        with pytest.raises(ValueError):
            make_embed_token(keeper, path)
    document = ApprovalDocument.objects.get(external_id="PR-2026-0042")
    # A prefix token (as signed before) opens nothing at all.
    prefix = _legacy_token(keeper, "/w/")
    for path in ("/w/pending/", f"/w/approval/{document.pk}/", STOCK, "/w/pending/body/"):
        assert client.get(path, {"e": prefix}).status_code == 403, path
    # A page's token opens that page and its body partial, not a sibling or a longer path.
    token = make_embed_token(keeper, STOCK)
    assert client.get(STOCK, {"e": token}).status_code == 200
    assert client.get(STOCK + "body/", {"e": token}).status_code == 200
    assert client.get("/w/stock/SKU-124/", {"e": token}).status_code == 403
    approval = make_embed_token(users["li.si"], f"/w/approval/{document.pk}/")
    assert client.get(f"/w/approval/{document.pk}/", {"e": approval}).status_code == 200
    assert client.get("/w/pending/", {"e": approval}).status_code == 403


def test_the_matrix_session_refuses_anything_but_one_widget_page(client, demo, settings):
    settings.MATRIX_HOMESERVER_URL = ""  # the path is checked before the homeserver is asked
    grant = {"access_token": "t", "matrix_server_name": "portal.test"}
    for path in ("/w/", "/w/pending/body/", "/w/matrix/", "/w/matrix/session", "/w/stock/"):
        answer = client.post("/w/matrix/session", {**grant, "path": path}, content_type="application/json")
        assert answer.status_code == 400, path
        assert client.get("/w/matrix/", {"path": path}).status_code == 400, path
    one_page = client.post("/w/matrix/session", {**grant, "path": STOCK}, content_type="application/json")
    assert one_page.status_code == 401  # a widget page: on to the OpenID check (no homeserver here)


@pytest.mark.django_db(transaction=True)
async def test_a_socket_opened_with_an_embed_token_watches_only_its_widgets_topics(live_world):
    manager = live_world["li.si"]
    document = await sync_to_async(ApprovalDocument.objects.get)(external_id="PR-2026-0042")
    token = await sync_to_async(make_embed_token)(manager, f"/w/approval/{document.pk}/")
    ws = await socket_for(token=token)
    await subscribe(ws, f"approval.{document.pk}")
    for other in ("item.SKU-123", f"inbox.{manager.pk}", f"approval.{document.pk + 1}"):
        await ws.send_json_to({"subscribe": other})
        assert await ws.receive_json_from(timeout=2) == {"refused": other}
    await ws.disconnect()

    # The pending widget's socket watches its viewer's inbox, nothing else.
    pending = await sync_to_async(make_embed_token)(live_world["li.si"], "/w/pending/")
    ws = await socket_for(token=pending)
    await subscribe(ws, f"inbox.{live_world['li.si'].pk}")
    await ws.send_json_to({"subscribe": f"approval.{document.pk}"})
    assert await ws.receive_json_from(timeout=2) == {"refused": f"approval.{document.pk}"}
    await ws.disconnect()

    # A prefix token (as signed before) signs no socket in.
    legacy = await sync_to_async(_legacy_token)(manager, "/w/")
    refused = WebsocketCommunicator(LiveConsumer.as_asgi(), f"/ws/live/?e={legacy}")
    refused.scope["user"] = AnonymousUser()
    connected, code = await refused.connect()
    assert not connected and code == 4401


@pytest.mark.django_db(transaction=True)
async def test_receivables_topics_check_the_customer_or_project_they_name(live_world):
    ws = await socket_for(live_world["chen.qi"])  # 销售: his own customers only (华东电子, not ACME)
    await subscribe(ws, scope_topic("receivables", "customer", "华东电子"))
    for topic in (scope_topic("receivables", "customer", "ACME Corp"),
                  scope_topic("receivables", "customer", "no such customer"),
                  scope_topic("receivables", "project", "no such project")):
        await ws.send_json_to({"subscribe": topic})
        assert await ws.receive_json_from(timeout=2) == {"refused": topic}
    await ws.disconnect()
    ws = await socket_for(live_world["wang.wu"])  # 财务经理: every customer
    await subscribe(ws, scope_topic("receivables", "customer", "ACME Corp"))
    await ws.disconnect()
