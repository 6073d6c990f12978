"""The Matrix widget flow in Chromium: a page playing the Matrix client frames the pinned widget URL
(/w/matrix/?path=…&widgetId=…); the bootstrap page asks it for an OpenID token through the widget API
(vendored matrix-widget-api), the portal checks the token with the real Synapse, and the frame opens
the live stock widget for the linked portal user. A token the homeserver does not know opens nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from sso.models import ImIdentity
from tests.conftest import chromium  # noqa: F401 - the module-scoped Chromium fixture
from tests.live_server import LiveServer, run_live_server
from tests.test_browser import WAIT_MS, outside_playwright_loop, wait_js
from tests.test_browser_widgets import Host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The client side of the widget API: answer the widget's requests (postMessage, "fromWidget") the way
# Element does; get_openid with the credentials the homeserver issued for the person looking.
CLIENT_PAGE = """<!doctype html><meta charset="utf-8"><title>Matrix client</title>
<iframe id="w" src="{src}" style="width:400px;height:600px"></iframe>
<script>
const credentials = {credentials};
window.asked = [];
window.addEventListener("message", (event) => {{
  const request = event.data;
  if (!request || request.api !== "fromWidget" || request.response) return;
  window.asked.push(request.action);
  const response = request.action === "get_openid" ? credentials
    : request.action === "supported_api_versions" ? {{supported_versions: ["0.0.1", "0.0.2"]}} : {{}};
  event.source.postMessage({{...request, response}}, event.origin);
}});
</script>"""


@pytest.fixture(scope="module")
def client_host(tmp_path_factory) -> Iterator[Host]:
    directory = tmp_path_factory.mktemp("matrix-client")
    host = Host(directory)
    host.directory = directory
    yield host
    host.stop()


@pytest.fixture(scope="module")
def portal_server(django_db_setup, tmp_path_factory, client_host, synapse) -> Iterator[LiveServer]:
    from django.conf import settings

    with run_live_server(settings.DATABASES["default"], settings.SECRET_KEY, tmp_path_factory.mktemp("portal"),
                         extra_env={"WIDGET_FRAME_ANCESTORS": client_host.origin,
                                    "MATRIX_HOMESERVER_URL": synapse.url}) as server:
        yield server


def open_in_client(chromium, host: Host, server: LiveServer, credentials: dict,  # noqa: F811
                   path: str = "/w/stock/SKU-123/"):
    src = f"{server.url}/w/matrix/?path={quote(path, safe='/')}&widgetId=w1" \
          f"&parentUrl={quote(host.origin + '/client.html', safe='')}"
    (host.directory / "client.html").write_text(
        CLIENT_PAGE.format(src=src, credentials=json.dumps(credentials)), encoding="utf-8")
    context = chromium.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"{host.origin}/client.html")
    return context, page


def widget_frame(page):
    wait_js(page, "document.querySelector('iframe#w') !== null")
    return page.frames[1]


def test_the_pinned_widget_learns_its_viewer_from_the_clients_openid_token(
    chromium, client_host, portal_server, synapse, fresh_user  # noqa: F811
):
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo

    # In a thread of its own: the demo publishes live updates, which cannot run on Playwright's loop.
    outside_playwright_loop(setup_demo)
    person = fresh_user()
    ImIdentity.objects.create(user=get_user_model().objects.get(username="zhao.liu"), platform="matrix",
                              tenant="portal.test", external_id=person.user_id)
    with synapse.server.client(person) as api:
        grant = api.post(f"/user/{person.user_id}/openid/request_token", json={}).json()

    context, page = open_in_client(chromium, client_host, portal_server,
                                   {"state": "allowed", **grant})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        wait_js(page, "window.asked.includes('get_openid')")
        widget = None
        for _ in range(WAIT_MS // 50):  # the bootstrap page replaces itself with the signed widget link
            widget = next((f for f in page.frames if "/w/stock/SKU-123/?e=" in f.url), None)
            if widget:
                break
            page.wait_for_timeout(50)
        assert widget is not None, [f.url for f in page.frames]
        wait_js(widget, "!!document.body && document.body.dataset.live === 'on'")
        assert "伺服电机" in widget.content()
    finally:
        context.close()
    assert not errors, errors


def test_a_token_the_homeserver_does_not_know_opens_nothing(
    chromium, client_host, portal_server, synapse  # noqa: F811
):
    forged = {"state": "allowed", "access_token": "forged", "token_type": "Bearer",
              "matrix_server_name": "portal.test", "expires_in": 3600}
    context, page = open_in_client(chromium, client_host, portal_server, forged)
    try:
        frame = widget_frame(page)
        wait_js(frame, "!!document.body && document.body.dataset.state === 'failed'")
        text = frame.evaluate("document.getElementById('status').textContent")
        assert "homeserver does not know this token" in text, text
        assert frame.url.startswith(f"{portal_server.url}/w/matrix/") and "伺服电机" not in frame.content()
    finally:
        context.close()


def test_the_pinned_board_opens_as_the_member_the_openid_token_names(
    chromium, client_host, portal_server, synapse, fresh_user  # noqa: F811
):
    """The group's board pinned in a Matrix room opens, through the same OpenID flow, for the linked
    member with their own data (prices included), live."""
    from django.contrib.auth import get_user_model

    from erp.connectors.demo.services import ensure_connector
    from inventory.models import StockLevel
    from notifications.demo import setup_notifications_demo
    from notifications.groups import create_group
    from notifications.models import ChatGroup, NotificationRule
    from portal.demo import setup_demo

    def world() -> int:
        setup_demo()
        setup_notifications_demo(ensure_connector())
        level = StockLevel.objects.get(sku="SKU-124", warehouse="SH")
        rule = NotificationRule.objects.get(event_type="erp.stock.changed")
        member = get_user_model().objects.get(username="zhao.liu")
        return create_group(name="低库存 SKU-124", purpose=ChatGroup.Purpose.WAR_ROOM, platform="devinbox",
                            key="matrix-board", members=[(member, "planner")], subject_topic=f"stock.{level.pk}",
                            rule=rule).pk

    group_id = outside_playwright_loop(world)
    person = fresh_user()
    ImIdentity.objects.create(user=get_user_model().objects.get(username="zhao.liu"), platform="matrix",
                              tenant="portal.test", external_id=person.user_id)
    with synapse.server.client(person) as api:
        grant = api.post(f"/user/{person.user_id}/openid/request_token", json={}).json()
    context, page = open_in_client(chromium, client_host, portal_server, {"state": "allowed", **grant},
                                   path=f"/g/{group_id}/")
    try:
        board = None
        for _ in range(WAIT_MS // 50):
            board = next((f for f in page.frames if f"/g/{group_id}/?e=" in f.url), None)
            if board:
                break
            page.wait_for_timeout(50)
        assert board is not None, [f.url for f in page.frames]
        wait_js(board, "!!document.body && document.body.dataset.live === 'on'")
        html = board.content()
        assert "PO-2026-0301" in html and "2650" in html and "赵六" in html
    finally:
        context.close()
        # The server records the board's socket joining and leaving (boards.presence): let it finish
        # before the test database is flushed, or the flush and that write can deadlock.
        from boards.models import BoardPresence

        for _ in range(WAIT_MS // 50):
            if not BoardPresence.objects.filter(group_id=group_id).exists():
                break
            time.sleep(0.05)
