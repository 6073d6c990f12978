"""The loop as a person walks it, in Debian Chromium driven by Playwright, against a live Daphne.

Card in the dev inbox → tap "Open" (one-time sign-in link) → approve with a comment → the other
open pages (a second device, the inbox) change in place without reload → the ERP holds the decision.
Numbers worth quoting (page weight, click → other page, event → card) are printed: run with ``-s``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import pytest

from .live_server import LiveServer, run_live_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOC_NUMBER = "PR-2026-0042"
DOC_TITLE = "紧急采购: 伺服电机"
PAGE_WEIGHT_TARGET = 40 * 1024
T = TypeVar("T")
WAIT_MS = 10_000  # how long to wait for something that should take well under a second
# "Live" here means without a reload, within the wait: the speed itself (decision → every open page,
# p99 < 250 ms) is measured by bench/run.py, never by a timed test on a machine that may be busy.
LIVE_BUDGET_MS = WAIT_MS

# Records, in the page, when ``condition()`` first holds (Date.now(), comparable across pages and
# with the test process's clock); a reload would lose window.__noReload.
WATCH_JS = """(condition) => {
  const holds = new Function("return (" + condition + ")();");
  window.__noReload = true;
  window.__seenAt = null;
  // One watch at a time: an earlier watch's condition (already true) must not stamp this one.
  if (window.__watcher) window.__watcher.disconnect();
  const check = () => { if (window.__seenAt === null && holds()) window.__seenAt = Date.now(); };
  window.__watcher = new MutationObserver(check);
  window.__watcher.observe(document.documentElement, {subtree: true, childList: true, attributes: true});
  check();
}"""


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daphne_server(django_db_setup, tmp_path_factory) -> Iterator[LiveServer]:
    """Daphne on the test database (created by now, so DATABASES holds the test database's name)."""
    from django.conf import settings

    log_dir = tmp_path_factory.mktemp("live-server")
    with run_live_server(settings.DATABASES["default"], settings.SECRET_KEY, log_dir) as server:
        yield server


@pytest.fixture
def world(daphne_server, settings):
    """The demo world, committed, its cards' links pointing at the live server."""
    from portal.demo import setup_demo

    settings.PORTAL_BASE_URL = daphne_server.url
    outside_playwright_loop(setup_demo)
    return daphne_server


@pytest.fixture
def new_page(chromium, daphne_server) -> Iterator:
    """``new_page()`` opens a page in a fresh browser context (own cookies, own cache); page errors
    (uncaught JS exceptions) fail the test."""
    contexts, errors = [], []

    def make():
        context = chromium.new_context(base_url=daphne_server.url, locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


# --- helpers ------------------------------------------------------------------------------------


def outside_playwright_loop(function: Callable[[], T]) -> T:
    """Run ``function`` in a thread of its own, away from the asyncio loop that Playwright's sync
    API keeps on the main thread: there live publishes (async_to_sync) work as in a server."""
    from django.db import connections

    def run() -> T:
        try:
            return function()
        finally:
            connections.close_all()  # this thread's connections; none may outlive it

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=60)


def wait_js(target, expression: str, timeout_ms: int = WAIT_MS) -> None:
    """Poll ``expression`` in a page or frame until it is truthy. Playwright's wait_for_function
    evaluates with eval(), which the portal's Content-Security-Policy (rightly) forbids; evaluate()
    goes through DevTools and is not subject to it. Times that matter are taken inside the page."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not target.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_ms} ms waiting for: {expression}")
        time.sleep(0.02)


def wait_live(page) -> None:
    """live.js sets data-live="on" once the server acknowledged a subscription."""
    wait_js(page, "document.body.dataset.live === 'on'")


def open_phone(page, username: str, password: str = "demo") -> None:  # noqa: S107 - the demo password
    """Open ``username``'s phone in the dev inbox, signing in to it the first time (as an IM app asks)."""
    page.goto(f"/dev/inbox/?user={username}")
    unlock = page.locator("form.unlock")
    if unlock.count():
        unlock.locator("input[name=password]").fill(password)
        with page.expect_response(lambda response: "/unlock/" in response.url):
            unlock.locator("button[type=submit]").click()
        page.wait_for_selector("form.botask")


def sign_in(page, username: str, next_path: str = "") -> None:
    page.goto("/accounts/login/" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo")
    with page.expect_navigation():
        page.click("form[action='/accounts/login/'] button[type=submit]")
    assert "/accounts/login/" not in page.url, f"sign-in as {username} failed"


def watch(page, condition_js: str) -> None:
    page.evaluate(WATCH_JS, condition_js)


def seen_after(page, start_ms: float, what: str) -> float:
    """Milliseconds from ``start_ms`` until the watched condition held in ``page``."""
    wait_js(page, "window.__seenAt !== null")
    assert page.evaluate("window.__noReload === true"), f"{what}: the page was reloaded"
    return page.evaluate("window.__seenAt") - start_ms


def card_selector(topic: str) -> str:
    return f'.imcard[data-card-topic="{topic}"]'


def measure_page_weight(page, path: str) -> dict[str, int]:
    """Load ``path`` with the browser cache off and add up what every request of the page cost on
    the wire (DevTools' "transferred": headers + encoded body) and decoded. The websocket is not
    counted."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    seen: dict[str, dict] = {}

    def entry(request_id: str) -> dict:
        return seen.setdefault(request_id, {"url": "", "encoding": "", "headers": 0, "wire": 0, "decoded": 0})

    def on_response(event: dict) -> None:
        response = entry(event["requestId"])
        response["url"] = event["response"]["url"]
        headers = {k.lower(): v for k, v in event["response"]["headers"].items()}
        response["encoding"] = headers.get("content-encoding", "identity")
        response["headers"] = int(event["response"].get("encodedDataLength", 0))

    def on_data(event: dict) -> None:
        entry(event["requestId"])["decoded"] += event["dataLength"]

    def on_finished(event: dict) -> None:
        entry(event["requestId"])["wire"] = int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", on_response)
    cdp.on("Network.dataReceived", on_data)
    cdp.on("Network.loadingFinished", on_finished)
    page.goto(path)
    wait_live(page)
    page.wait_for_load_state("load")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    cdp.detach()
    finished = [r for r in seen.values() if r["url"] and r["wire"]]
    for r in finished:
        print(
            f"    {r['url'].split('/', 3)[-1]}: {r['wire']} B on the wire ({r['headers']} B headers),"
            f" {r['decoded']} B decoded, {r['encoding']}"
        )
    return {
        "requests": len(finished),
        "wire": sum(r["wire"] for r in finished),
        "headers": sum(r["headers"] for r in finished),
        "decoded": sum(r["decoded"] for r in finished),
    }


def post_events_over_http(server: LiveServer):
    """A stand-in for erp.intake.receive that sends the signed event to the live server's intake,
    as an external ERP does: the server then delivers the card and tells open pages itself."""
    from erp.intake import IntakeResult

    def receive(connector_slug: str, headers, body: bytes) -> IntakeResult:
        response = httpx.post(
            f"{server.url}/api/erp/{connector_slug}/events", content=body, headers=dict(headers), timeout=10
        )
        assert response.status_code == 202, response.text
        data = response.json()
        return IntakeResult(event_id=data["id"], duplicate=data["duplicate"])

    return receive


# --- tests ----------------------------------------------------------------------------------------


def test_card_link_approve_updates_every_open_page_live(world, new_page, monkeypatch):
    from approvals.models import ApprovalDocument
    from erp.connectors.demo import emitter
    from erp.connectors.demo.models import PurchaseRequisition
    from erp.connectors.demo.services import create_urgent_requisition

    document = ApprovalDocument.objects.get(external_id=DOC_NUMBER)
    detail_path = f"/approvals/{document.pk}/"
    card = card_selector(document.topic)

    # A: li.si's phone (signed in to once with li.si's password). Tap the card's link: a one-time token
    # gives a link session on this one page, and the phone's sign-in proves the tap is li.si's.
    page_a = new_page()
    open_phone(page_a, "li.si")
    assert DOC_TITLE in page_a.locator(card).locator(".title").inner_text()
    with page_a.expect_navigation(url=f"**{detail_path}"):
        page_a.locator(card).locator("a.button").click()
    wait_live(page_a)
    assert page_a.locator("header .who").inner_text() == "李四"
    assert page_a.locator("h1").inner_text() == DOC_TITLE
    assert page_a.locator("#doc-status").get_attribute("class") == "status pending"

    # B: li.si's second device, through the sign-in form; the page's weight measured on the way.
    page_b = new_page()
    sign_in(page_b, "li.si")
    print(f"\n[browser] approval page {detail_path}, cold cache:")
    weight = measure_page_weight(page_b, detail_path)
    verdict = "within" if weight["wire"] <= PAGE_WEIGHT_TARGET else "OVER"
    print(
        f"[browser] page weight: {weight['requests']} requests, {weight['wire']} B on the wire"
        f" (of which {weight['headers']} B headers), {weight['decoded']} B decoded;"
        f" {verdict} the {PAGE_WEIGHT_TARGET} B target"
    )
    assert weight["wire"] <= PAGE_WEIGHT_TARGET, f"the approval page costs {weight['wire']} B over the wire"
    assert page_b.locator("button[name=outcome][value=approved]").count() == 1

    # C: li.si's inbox, open before the decision.
    page_c = new_page()
    open_phone(page_c, "li.si")
    wait_live(page_c)
    assert page_c.locator(card).locator("button").count() == 2

    watch(page_b, "() => !!document.querySelector('#doc-status.approved')")
    watch(page_c, f"() => !!document.querySelector('{card} .status.approved')")

    # A approves with a comment.
    page_a.fill("textarea[name=comment]", "同意，尽快下单")
    page_a.evaluate("document.addEventListener('click', () => { window.__clickAt = Date.now(); }, true)")
    page_a.click("button[name=outcome][value=approved]")
    page_a.wait_for_selector("#doc-status.approved")
    page_a.wait_for_selector("#writeback.done")
    clicked_at = page_a.evaluate("window.__clickAt")
    assert "李四" in page_a.locator("#decided-text").inner_text()
    assert page_a.locator("button[name=outcome]").count() == 0

    to_b = seen_after(page_b, clicked_at, "second device")
    to_c = seen_after(page_c, clicked_at, "inbox")
    print(f"[browser] A's click → B shows approved: {to_b:.0f} ms; → C's card edited: {to_c:.0f} ms")
    assert to_b < LIVE_BUDGET_MS, f"the second device took {to_b:.0f} ms"
    assert to_c < LIVE_BUDGET_MS, f"the inbox card took {to_c:.0f} ms"

    # B, never reloaded: approved by 李四, no buttons, the comment in the history, ERP written.
    assert "李四" in page_b.locator("#decided-text").inner_text()
    assert page_b.locator("button[name=outcome]").count() == 0
    page_b.wait_for_selector("#writeback.done")
    assert "同意，尽快下单" in page_b.locator("#doc-panel").inner_text()
    # C: the same card, edited in place.
    assert page_c.locator(card).count() == 1
    assert page_c.locator(card).locator("button").count() == 0
    # The ERP holds the decision.
    requisition = PurchaseRequisition.objects.get(number=DOC_NUMBER)
    assert requisition.state == "approved"
    assert requisition.decided_by == "li.si"

    # Event → card: the ERP raises a new requisition while C shows li.si's inbox.
    monkeypatch.setattr(emitter, "receive", post_events_over_http(world))
    topics_before = page_c.evaluate("[...document.querySelectorAll('.imcard')].map(c => c.dataset.cardTopic)")
    watch(
        page_c,
        f"() => [...document.querySelectorAll('.imcard')].some(c => !{json.dumps(topics_before)}"
        ".includes(c.dataset.cardTopic))",
    )
    posted_at = time.time() * 1000
    new_requisition = create_urgent_requisition()
    to_card = seen_after(page_c, posted_at, "inbox, new card")
    new_document = ApprovalDocument.objects.get(external_id=new_requisition.number)
    print(f"[browser] event posted → new card in the open inbox: {to_card:.0f} ms ({new_requisition.number})")
    new_card = page_c.locator(card_selector(new_document.topic))
    assert new_card.count() == 1, str(page_c.evaluate(
        "[...document.querySelectorAll('.imcard')].map(c => c.dataset.cardTopic + ' ' + c.innerText)"))
    assert new_requisition.title in new_card.locator(".title").inner_text()
    assert new_card.locator("button").count() == 2
    assert to_card < LIVE_BUDGET_MS, f"event → card took {to_card:.0f} ms"


def test_forwarded_card_link_lands_on_sign_in_without_the_document(world, new_page):
    from django.contrib.auth import get_user_model

    from approvals.models import ApprovalDocument
    from im.platforms.devinbox.models import DevInboxMessage

    document = ApprovalDocument.objects.get(external_id=DOC_NUMBER)
    li_si = get_user_model().objects.get(username="li.si")
    link = DevInboxMessage.objects.get(recipient=li_si, card__topic=document.topic).card["link"]
    assert link.startswith(world.url + "/s/")

    # zhang.san (the requester, who may view the document) opens the link li.si forwarded him.
    page = new_page()
    sign_in(page, "zhang.san")
    page.goto(link)
    assert page.url.split("?")[0] == world.url + "/accounts/login/", page.url
    assert page.locator(".messages li.warning").count() == 1
    html = page.content()
    assert DOC_TITLE not in html and "伺服电机" not in html

    # The refused attempt did not use the link up: li.si can still open it.
    page = new_page()
    page.goto(link)
    assert page.url == world.url + f"/approvals/{document.pk}/"
    assert page.locator("header .who").inner_text() == "李四"


def test_an_error_answer_to_a_panel_action_is_shown_not_swallowed(world, new_page):
    """htmx swaps nothing on a 4xx: the page says what the answer said (here the document went away
    between render and tap: the translated "not found"), instead of a button that does nothing."""
    from approvals.models import ApprovalDocument

    document = ApprovalDocument.objects.get(external_id=DOC_NUMBER)
    page = new_page()
    sign_in(page, "li.si")
    page.goto(f"/approvals/{document.pk}/")
    assert page.locator("button[name=outcome][value=approved]").count() == 1
    outside_playwright_loop(lambda: ApprovalDocument.objects.filter(pk=document.pk).delete())
    page.click("button[name=outcome][value=approved]")
    alert = page.locator("#doc-panel > .htmx-error[role=alert]")
    alert.wait_for()
    assert alert.inner_text() == "未找到"
    page.evaluate("document.querySelector('#doc-panel > .htmx-error').textContent = 'seen'")
    page.click("button[name=outcome][value=approved]")  # a second failure rewrites the same note
    wait_js(page, "document.querySelector('#doc-panel > .htmx-error').textContent === '未找到'")
    assert page.locator("#doc-panel > .htmx-error").count() == 1
