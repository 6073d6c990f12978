"""The supplier at the table, in Debian Chromium with three browser contexts against a live Daphne:
the buyer opens the low-stock group from the card in the dev inbox, the supplier's contact gets the
one-time code by email (a real SMTP server on loopback, aiosmtpd; Django's SMTP backend sends to
it), redeems it, sees quantities and dates but no prices, and confirms a delivery date; the buyer's
and the planner's open boards show it live, without reload; the ERP holds the date (the demo ERP,
and a real Tryton in the sibling test); after the group is archived the guest's pass is refused. A
second test walks the finance review board. The delays are printed (run with ``-s``), not asserted:
a loaded machine checks that pages update live within the wait; how fast is measured in bench/."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from erp.connectors.tryton.conftest import tryton, tryton_template  # noqa: F401 - the running trytond
from erp.connectors.tryton.seed_tryton import company_today
from tests.live_server import LiveServer, free_port, run_live_server
from tests.test_browser import (
    WAIT_MS,
    open_phone,
    outside_playwright_loop,
    seen_after,
    sign_in,
    wait_js,
    wait_live,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUPPLIER = "liu.wei@jinggong-motor.example.cn"
TRYTON_WAIT_MS = 30_000  # a confirmation on Tryton is ~15 JSON-RPC calls before the boards refetch


class Mailbox:
    """aiosmtpd on a free loopback port: every message Django's SMTP backend delivers lands here."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.arrived = threading.Condition()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        with self.arrived:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, address: str, timeout: float = 10.0, containing: str = ""):
        """The first message to ``address`` whose text holds ``containing``."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for rcpt, message in self.messages:
                    if address in rcpt and containing in message.get_content():
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail to {address} within {timeout} s")
                self.arrived.wait(left)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture(scope="module")
def board_server(django_db_setup, tmp_path_factory, mailbox) -> Iterator[LiveServer]:
    from django.conf import settings

    log_dir = tmp_path_factory.mktemp("board-server")
    env = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
           "EMAIL_PORT": str(mailbox.port)}
    with run_live_server(settings.DATABASES["default"], settings.SECRET_KEY, log_dir, extra_env=env) as server:
        yield server


@pytest.fixture
def world(board_server, settings):
    from notifications.demo import setup_notifications_demo
    from portal.demo import setup_demo

    settings.PORTAL_BASE_URL = board_server.url

    def build():
        setup_demo()
        from erp.connectors.demo.services import ensure_connector

        setup_notifications_demo(ensure_connector())

    outside_playwright_loop(build)
    return board_server


@pytest.fixture
def context_for(chromium, board_server) -> Iterator:
    contexts, errors = [], []

    def make():
        context = chromium.new_context(base_url=board_server.url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                       viewport={"width": 390, "height": 844})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def run(function):
    return outside_playwright_loop(function)


def wait_for_open_group(**lookup):
    """The group row exists at once; its chat id only once the outbox has opened the chat."""
    from notifications.models import ChatGroup

    deadline = time.monotonic() + WAIT_MS / 1000
    while not (group := run(lambda: ChatGroup.objects.filter(chat_id__gt="", **lookup).first())):
        assert time.monotonic() < deadline, f"no open group {lookup}"
        time.sleep(0.1)
    return group


def shot(page, name: str) -> None:
    """With SCREENSHOTS=1, keep what the page shows for docs/scenarios.md (docs/screens/)."""
    if os.environ.get("SCREENSHOTS") == "1":
        page.screenshot(path=str(Path(__file__).resolve().parents[2] / "docs" / "screens" / f"{name}.png"),
                        full_page=True)


def guest_redeems(guest, url: str, group_id: int, mailbox: Mailbox, email: str = SUPPLIER) -> None:
    """The supplier's contact opens the emailed link and enters the one-time code: a board, no session."""
    body = mailbox.wait_for(email, containing=f"{url}/g/{group_id}/join/").get_content()
    code = re.search(r"\b(\d{8})\b", body).group(1)
    guest.goto(f"/g/{group_id}/join/")
    guest.fill("input[name=email]", email)
    guest.fill("input[name=code]", code)
    with guest.expect_navigation():
        guest.click("form button.primary")
    wait_live(guest)
    assert not [c for c in guest.context.cookies() if c["name"] == "sessionid"]  # no portal session


def confirm_seen_live(guest, members: dict, order: str, day: dt.date, *, also: dict | None = None,
                      wait_ms: int = WAIT_MS) -> dict:
    """The guest confirms ``day`` for ``order``; every member's open board (and ``also``: page → JS
    condition) shows it without reload within ``wait_ms``. Returns the delays in ms, for the record:
    how fast is bench/'s business, a test on a loaded machine checks that it happens live."""
    condition = f"() => (document.querySelector('.po-line[data-order=\"{order}\"] .confirmed') || {{}}).innerText" \
                f"?.startsWith('{day.isoformat()}')"
    for page in members.values():
        watch(page, condition)
    for page, extra in (also or {}).items():
        watch(page, extra)
    form = guest.locator(f'.po-line[data-order="{order}"] form.confirm')
    form.locator("input[name=date]").fill(day.isoformat())
    started = guest.evaluate("Date.now()")
    form.locator("button").click()
    guest.wait_for_load_state(timeout=wait_ms)
    for page in [*members.values(), *(also or {})]:
        wait_js(page, "window.__seenAt !== null", wait_ms)
    delays = {name: round(seen_after(page, started, name)) for name, page in members.items()}
    delays.update({f"page {n}": round(seen_after(page, started, "page")) for n, page in enumerate(also or {})})
    print(f"\nconfirm → the others, without reload (ms): {delays}")
    assert day.isoformat() in guest.locator("#notice").inner_text()
    return delays


def test_supplier_guest_confirms_a_delivery_date_buyer_and_planner_see_it_live(world, context_for, mailbox):
    from erp.connectors.demo import services as erp
    from erp.connectors.demo.models import PurchaseOrderLine

    run(lambda: erp.adjust_stock("SKU-124", "SH", -5))  # below the safety level: cards to buyer and planner

    buyer, planner, guest = context_for(), context_for(), context_for()
    sign_in(buyer, "zhang.san")
    open_phone(buyer, "zhang.san")
    buyer.click('button[hx-post$="/action/group/"]')  # 一键建群 on the low-stock card
    wait_js(buyer, "!document.querySelector('button[hx-post$=\"/action/group/\"]')")  # the card lost its button
    group = wait_for_open_group(purpose="war_room")  # its chat opens through the outbox, a moment later

    buyer.goto(f"/g/{group.pk}/")
    sign_in(planner, "zhao.liu", f"/g/{group.pk}/")
    for page in (buyer, planner):
        wait_live(page)
        assert "2650" in page.content()  # members see prices (their own permissions)

    guest_redeems(guest, world.url, group.pk, mailbox)
    html = guest.content()
    assert "PO-2026-0301" in html and "PO-2026-0302" not in html  # own supplier's order only
    assert "2650" not in html and "单价" not in html  # no prices
    assert guest.locator('.po-line[data-order="PO-2026-0301"] .qty').inner_text() == "10"
    for page in (buyer, planner):  # who is looking now: the guest too
        wait_js(page, "document.querySelector('#presence').innerText.includes('刘伟')")

    # The buyer's IM view of the group chat (the dev inbox group page) on a phone-sized screen: the
    # pinned widgets' "Open" sits beside the title, and the confirmation arrives there without reload.
    chat_page = buyer.context.new_page()
    chat_page.goto(f"/dev/inbox/group/{group.chat_id}/")
    wait_live(chat_page)
    for pinned in chat_page.locator(".imcard.pinned").all():
        title, button = pinned.locator(".title").bounding_box(), pinned.locator(".button").bounding_box()
        assert title["x"] + title["width"] <= button["x"] or title["y"] + title["height"] <= button["y"], \
            (title, button)
    assert not chat_page.locator("ul.messages").count()  # no post repeated as a banner

    confirm_seen_live(guest, {"buyer": buyer, "planner": planner}, "PO-2026-0301", dt.date(2026, 12, 20), also={
        chat_page: "() => document.querySelector('.group-phone').innerText.includes('2026-12-20')"})
    shot(guest, "board-supplier-guest")
    shot(buyer, "board-buyer")
    shot(chat_page, "group-chat-live")

    line = run(lambda: PurchaseOrderLine.objects.get(order__number="PO-2026-0301", item__sku="SKU-124"))
    assert line.confirmed_date == dt.date(2026, 12, 20) and "刘伟" in line.confirmed_by

    run(lambda: erp.adjust_stock("SKU-124", "SH", 20))  # back above: the group archives
    guest.goto(f"/g/{group.pk}/")
    assert "已归档" in guest.locator("#refused").inner_text()
    assert guest.goto(f"/g/{group.pk}/body/").status == 404


@pytest.mark.tryton
def test_supplier_guest_on_tryton_confirms_a_date_tryton_plans_with(board_server, tryton, context_for,  # noqa: F811
                                                                    mailbox, settings):
    """The same walk on a real Tryton: the card comes from a polled stock count, the guest is the
    item's supplier in Tryton, and the confirmed date is the incoming move's planned date there."""
    from erp.connectors.tryton.client import TrytonClient
    from erp.connectors.tryton.seed_tryton import SUPPLIER_EMAIL
    from notifications.groups import archive_groups_about

    from .conftest import notice_about, setup_tryton_board

    settings.PORTAL_BASE_URL = board_server.url
    _erp, buyer_user = run(lambda: setup_tryton_board(tryton))
    notice = run(lambda: notice_about(buyer_user, "SKU-123"))
    purchase = tryton.seed["purchases"][SUPPLIER_EMAIL]
    order, other = purchase["number"], next(p["number"] for e, p in tryton.seed["purchases"].items()
                                            if e != SUPPLIER_EMAIL)

    buyer, planner, guest = context_for(), context_for(), context_for()
    sign_in(buyer, "li.si")
    open_phone(buyer, "li.si")
    buyer.click(f'.imcard[data-card-topic="{notice.card["topic"]}"] button[hx-post$="/action/group/"]')
    wait_js(buyer, f"!document.querySelector('.imcard[data-card-topic=\"{notice.card['topic']}\"] "
                   f"button[hx-post$=\"/action/group/\"]')")
    group = wait_for_open_group(purpose="war_room")

    buyer.goto(f"/g/{group.pk}/")
    sign_in(planner, "wang.wu", f"/g/{group.pk}/")  # a holder of Tryton's "Stock" group
    for page in (buyer, planner):
        wait_live(page)
        assert "3000" in page.content()  # members see prices (their own permissions)

    guest_redeems(guest, board_server.url, group.pk, mailbox, SUPPLIER_EMAIL)
    assert guest.locator(f'.po-line[data-order="{order}"]').count() == 1
    assert guest.locator(f'.po-line[data-order="{other}"]').count() == 0  # the other supplier's order
    html = guest.content()
    assert "3000" not in html and "3100" not in html and "单价" not in html  # no prices
    assert guest.locator(f'.po-line[data-order="{order}"] .qty').inner_text() == "10"

    day = company_today() + dt.timedelta(days=10)
    # Each step reads Tryton over JSON-RPC (the confirmation about fifteen calls, each board refetch
    # four): on a loaded machine that is seconds, so this walk waits longer for the boards to move.
    for page in (buyer, planner, guest):
        page.set_default_timeout(TRYTON_WAIT_MS)
    confirm_seen_live(guest, {"buyer": buyer, "planner": planner}, order, day, wait_ms=TRYTON_WAIT_MS)
    with TrytonClient(tryton.base_url, tryton.database, "li.si", tryton.password) as erp:
        moves = erp.search_read("stock.move", [("origin", "=", f"purchase.line,{purchase['line']}")],
                                ["planned_date"])
    assert [m["planned_date"] for m in moves] == [day]  # Tryton holds the date

    run(lambda: archive_groups_about(group.subject_topic, "test: cleared"))
    guest.goto(f"/g/{group.pk}/")
    assert "已归档" in guest.locator("#refused").inner_text()
    assert guest.goto(f"/g/{group.pk}/body/").status == 404


def test_finance_review_board_question_reaches_the_requester_decision_the_other_device(world, context_for):
    from decimal import Decimal

    from approvals.models import ApprovalDocument
    from erp.connectors.demo import services as erp
    from erp.connectors.demo.models import ExpenseClaim

    claim = run(lambda: erp.create_expense_claim(Decimal("9800.00")))  # far above the category's usual
    reviewer, second_device, requester_phone = context_for(), context_for(), context_for()
    sign_in(reviewer, "wang.wu")
    open_phone(reviewer, "wang.wu")
    reviewer.click('button[hx-post$="/action/discuss/"]')  # 讨论: opens the review group
    group = wait_for_open_group(purpose="review", members__user__username="wang.wu")

    reviewer.goto(f"/g/{group.pk}/")
    sign_in(second_device, "wang.wu", f"/g/{group.pk}/")
    open_phone(requester_phone, "chen.qi")  # what the requester's IM shows
    for page in (reviewer, second_device, requester_phone):
        wait_live(page)
    assert claim.number in reviewer.locator("#claim").inner_text()
    assert "9800" in reviewer.locator("#claim .amount").inner_text()
    assert reviewer.locator("#claim .baseline").count() in (0, 1)  # the category's baseline once scored

    watch(requester_phone, "() => document.body.innerText.includes('请补充发票')")
    reviewer.fill("form.ask input[name=text]", "请补充发票")
    started = reviewer.evaluate("Date.now()")
    reviewer.click("form.ask button")
    print(f"\nquestion → requester's phone: {seen_after(requester_phone, started, 'requester'):.0f} ms")

    watch(second_device, "() => document.querySelector('#activity').innerText.includes('已驳回')")
    reviewer.fill("form.decide input[name=comment]", "缺少发票")
    started = reviewer.evaluate("Date.now()")
    reviewer.click("form.decide button[value=rejected]")
    delay = seen_after(second_device, started, "second device")
    print(f"decision → the reviewer's other board, without reload: {delay:.0f} ms")
    assert run(lambda: ApprovalDocument.objects.get(external_id=claim.number).status) == "rejected"
    shot(second_device, "board-review")
    deadline = time.monotonic() + 10  # the writeback runs after the decision commits
    while run(lambda: ExpenseClaim.objects.get(number=claim.number).state) != "rejected":
        assert time.monotonic() < deadline, "the demo ERP does not hold the decision"
        time.sleep(0.2)
