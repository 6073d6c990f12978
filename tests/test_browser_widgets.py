"""A widget framed by an IM client: a host page on another loopback origin frames the live stock
widget; a stock change in the ERP shows inside the frame without reload; an origin that is not
configured cannot frame it. Debian Chromium through Playwright, Daphne on the test database."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from .live_server import LiveServer, free_port, run_live_server
from .test_browser import WAIT_MS, outside_playwright_loop, post_events_over_http, wait_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE_BUDGET_MS = 2000


class Host:
    """A static web server on its own port: the "IM client" whose page frames the widget."""

    def __init__(self, directory) -> None:
        self.port = free_port()
        handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *args: None
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://localhost:{self.port}"  # another origin than Daphne's 127.0.0.1

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[tuple[Host, Host]]:
    directory = tmp_path_factory.mktemp("im-host")
    allowed, other = Host(directory), Host(directory)
    allowed.directory = other.directory = directory
    yield allowed, other
    allowed.stop()
    other.stop()


@pytest.fixture(scope="module")
def widget_server(django_db_setup, tmp_path_factory, hosts) -> Iterator[LiveServer]:
    from django.conf import settings

    allowed, _other = hosts
    log_dir = tmp_path_factory.mktemp("widget-server")
    with run_live_server(settings.DATABASES["default"], settings.SECRET_KEY, log_dir,
                         extra_env={"WIDGET_FRAME_ANCESTORS": allowed.origin}) as server:
        yield server


@pytest.fixture
def framed(widget_server, hosts, settings):
    """Write the host page framing ``path`` for ``username``; returns its URL on each host."""
    from django.contrib.auth import get_user_model

    from portal.demo import setup_demo
    from widgets.embed import make_embed_token

    settings.PORTAL_BASE_URL = widget_server.url
    outside_playwright_loop(setup_demo)

    def make(username: str, path: str) -> tuple[str, str]:
        user = get_user_model().objects.get(username=username)
        src = f"{widget_server.url}{path}?e={make_embed_token(user, path)}"
        allowed, other = hosts
        (allowed.directory / "host.html").write_text(
            f'<!doctype html><meta charset="utf-8"><title>IM</title><iframe id="w" src="{src}" '
            'style="width:400px;height:600px"></iframe>', encoding="utf-8")
        return f"{allowed.origin}/host.html", f"{other.origin}/host.html"

    return make


def set_stock_over_http(server: LiveServer, quantity: str) -> None:
    from erp.connectors.demo import emitter
    from erp.connectors.demo.models import Stock

    stock = Stock.objects.select_related("item", "warehouse").get(item__sku="SKU-123", warehouse__code="SH")
    stock.quantity = quantity
    data = emitter.stock_changed_data(stock)
    from erp.intake import receive  # noqa: F401 - the same signing as the demo ERP, sent over HTTP

    emitter_receive = post_events_over_http(server)
    envelope = emitter.build_envelope(emitter.STOCK_CHANGED, data, "SKU-123@SH")
    from erp.models import Connector

    headers, body = emitter.signed_request(Connector.objects.get(slug="demo").webhook_secret, envelope)
    emitter_receive("demo", headers, body)


def widget_frame(page):
    wait_js(page, "document.querySelector('iframe#w') !== null")
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        frames = [f for f in page.frames if "/w/stock/" in f.url]
        if frames:
            return frames[0]
        time.sleep(0.05)
    raise AssertionError(f"no widget frame in {[f.url for f in page.frames]}")


def test_a_framed_stock_widget_updates_itself(chromium, framed, widget_server):
    allowed_url, _ = framed("zhao.liu", "/w/stock/SKU-123/")
    context = chromium.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(allowed_url)
        frame = widget_frame(page)
        wait_js(frame, "!!document.body && document.body.dataset.live === 'on'")
        assert "伺服电机" in frame.content()

        started = time.time() * 1000
        outside_playwright_loop(lambda: set_stock_over_http(widget_server, "777"))
        wait_js(frame, "document.querySelector('tr[data-warehouse=\"SH\"] .qty').textContent.includes('777')")
        took = time.time() * 1000 - started
        print(f"\n[browser] ERP stock change → framed widget updated: {took:.0f} ms")
        assert took < LIVE_BUDGET_MS
    finally:
        context.close()
    assert not errors, errors


def test_an_origin_that_is_not_configured_cannot_frame_a_widget(chromium, framed, widget_server):
    _, other_url = framed("zhao.liu", "/w/stock/SKU-123/")
    # The widget itself answers, with a policy naming only the configured origin.
    direct = httpx.get(f"{widget_server.url}/healthz")
    assert direct.status_code == 200
    context = chromium.new_context()
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(other_url)
        page.wait_for_timeout(1500)
        texts = []
        for frame in page.frames[1:]:
            try:
                texts.append(frame.content())
            except Exception as exc:  # an error page Chromium put in place of the refused frame
                texts.append(f"<unreadable: {exc}>")
        assert texts, "the iframe element should exist"
        assert all("伺服电机" not in text for text in texts), texts
    finally:
        context.close()


# Wraps the page's WebSocket so the test can drop the connection and hold it down, as a phone going to
# sleep or changing networks does; while held down every reconnect attempt fails like a dead network.
SOCKET_CONTROL_JS = """(() => {
  const Real = window.WebSocket;
  window.__sockets = [];
  window.__network = "up";
  window.WebSocket = function (url, protocols) {
    // Down: a path no server route answers, on the page's own origin (the CSP allows no other).
    const socket = new Real(window.__network === "up" ? url : url.replace("/ws/live/", "/ws/down/"), protocols);
    window.__sockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Real.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();"""


def test_a_widget_that_lost_its_socket_shows_every_change_it_missed_once_back(chromium, framed, widget_server):
    """The socket drops, three stock changes happen, the socket returns: the widget shows all three."""
    allowed_url, _ = framed("zhao.liu", "/w/stock/SKU-123/")
    context = chromium.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(SOCKET_CONTROL_JS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(allowed_url)
        frame = widget_frame(page)
        wait_js(frame, "!!document.body && document.body.dataset.live === 'on'")

        frame.evaluate("window.__network = 'down'; window.__sockets.forEach(s => s.close())")
        wait_js(frame, "document.body.dataset.live === 'off'")
        for quantity in ("701", "702", "703"):
            outside_playwright_loop(lambda q=quantity: set_stock_over_http(widget_server, q))
        page.wait_for_timeout(300)  # changes published while the widget could not hear them
        moves = "document.querySelector('ul.moves').textContent"
        assert "703" not in frame.evaluate(moves), "the widget heard a change while its socket was down"

        # The network is back: the browser says so, and the widget reconnects at once (no backoff wait).
        frame.evaluate("window.__network = 'up'; window.dispatchEvent(new Event('online'))")
        wait_js(frame, "document.body.dataset.live === 'on'")
        wait_js(frame, "document.querySelector('tr[data-warehouse=\"SH\"] .qty').textContent.includes('703')")
        shown = frame.evaluate(moves)
        assert all(f"→ {q}" in shown for q in ("701", "702", "703")), shown
    finally:
        context.close()
    assert not errors, errors
