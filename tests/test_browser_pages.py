"""Phone pages as a person sees them (issue #21): Debian Chromium at 390×844 against Daphne on the
test database. Bulk approval (nothing ticked, live count and total, select all/none, confirmation
naming count and total, fits the phone), the approval page (why urgent, names, a card button that
asks first) and the stock widget's chart. Screenshots of each, in both languages, are written to
docs/screens/ (set SCREENSHOTS=0 to skip)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from .test_browser import (
    PAGE_WEIGHT_TARGET,
    WAIT_MS,
    daphne_server,  # noqa: F401  (module-scoped server, used through ``world``)
    measure_page_weight,
    open_phone,
    outside_playwright_loop,
    sign_in,
    wait_live,
    world,  # noqa: F401
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SCREENS = Path(__file__).resolve().parent.parent / "docs" / "screens"


@pytest.fixture
def phone(chromium, world) -> Iterator:  # noqa: F811  (the imported fixture)
    """``phone()`` opens a 390×844 page in a fresh context; uncaught page errors fail the test."""
    contexts, errors = [], []

    def make():
        context = chromium.new_context(base_url=world.url, viewport=PHONE, device_scale_factor=1,
                                       locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def set_language(username: str, language: str) -> None:
    def update() -> None:
        from django.contrib.auth import get_user_model

        from sso.models import Profile

        user = get_user_model().objects.get(username=username)
        Profile.objects.update_or_create(user=user, defaults={"language": language})

    outside_playwright_loop(update)


def screenshot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS", "1") == "0":
        return
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path))  # the phone's screen, not the whole page
    try:  # a 64-colour palette keeps each screen near 15 KB in the repository
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=64).save(path, optimize=True)


def fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide in a {PHONE['width']} px viewport"


def money(amount: Decimal, language: str = "zh-hans") -> str:
    from portal import formatting

    return formatting.money(amount, "CNY", language)


# --- bulk approval -------------------------------------------------------------------------------------


def test_bulk_approval_on_a_phone(phone):
    from approvals.models import ApprovalDocument, Decision

    page = phone()
    sign_in(page, "li.si", "/notifications/bulk-approve/")
    boxes = page.locator("input[name=document]")
    count = boxes.count()
    assert count >= 3
    assert page.locator("input[name=document]:checked").count() == 0, "something is ticked by default"
    fits_the_phone(page)
    summary = page.locator("#bulk-summary")
    assert summary.inner_text() == f"已选 0 项，合计 {money(Decimal(0))}"
    screenshot(page, "bulk-approve.zh-Hans")

    page.click("button[data-select=all]")
    assert page.locator("input[name=document]:checked").count() == count
    assert summary.inner_text().startswith(f"已选 {count} 项")
    page.click("button[data-select=none]")
    assert summary.inner_text() == f"已选 0 项，合计 {money(Decimal(0))}"

    amounts = [Decimal(boxes.nth(i).get_attribute("data-amount")) for i in (0, 1)]
    ids = [int(boxes.nth(i).get_attribute("value")) for i in (0, 1)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    total = money(sum(amounts))
    assert summary.inner_text() == f"已选 2 项，合计 {total}"
    # The total is in view before the button: nothing to scroll sideways, the bar sticks to the bottom.
    bar = page.locator(".bulk-bar").bounding_box()
    assert bar and bar["x"] >= 0 and bar["x"] + bar["width"] <= PHONE["width"]

    with page.expect_navigation():
        page.click("button[name=outcome][value=approved]")
    assert page.locator("#bulk-confirm h1").inner_text() == f"批准 2 项申请，合计 {total}？"
    fits_the_phone(page)
    assert outside_playwright_loop(lambda: Decision.objects.filter(document_id__in=ids).count()) == 0
    screenshot(page, "bulk-confirm.zh-Hans")
    with page.expect_navigation():
        page.click("#bulk-confirm button[type=submit]")
    assert page.locator("ul.results li.ok").count() == 2
    assert page.locator("input[name=document]:checked").count() == 0, "ticked again after a submit"
    statuses = outside_playwright_loop(
        lambda: set(ApprovalDocument.objects.filter(pk__in=ids).values_list("status", flat=True)))
    assert statuses == {"approved"}

    set_language("li.si", "en")
    page.goto("/notifications/bulk-approve/")
    boxes.nth(0).check()
    assert page.locator("#bulk-summary").inner_text().startswith("Selected: 1, total CN¥")
    fits_the_phone(page)
    screenshot(page, "bulk-approve.en")


# --- the approval page and the card that leads to it --------------------------------------------------


def test_approval_page_on_a_phone_explains_itself(phone):
    from approvals.models import ApprovalDocument, Decision

    document = outside_playwright_loop(lambda: ApprovalDocument.objects.get(external_id="PR-2026-0042"))
    page = phone()
    open_phone(page, "li.si")
    card = page.locator(f'.imcard[data-card-topic="{document.topic}"]')
    asked = []

    def dismiss(dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    card.locator("button.primary").click()
    page.wait_for_timeout(300)
    assert asked == [f"批准 PR-2026-0042（{money(document.amount)}）？"]
    assert outside_playwright_loop(lambda: Decision.objects.filter(document=document).count()) == 0

    with page.expect_navigation(url=f"**{document.get_absolute_url()}"):
        card.locator("a.button").click()
    wait_live(page)
    fits_the_phone(page)
    reason = page.locator("#urgent-reason").inner_text()
    assert reason.startswith("紧急") and document.urgent_reason in reason
    assert page.locator("#requester").inner_text() == "张三"
    assert "zhang.san" not in page.content()
    assert page.locator("p.amount").inner_text() == money(document.amount)
    screenshot(page, "approval.zh-Hans")

    set_language("li.si", "en")
    page.reload()
    wait_live(page)
    assert page.locator("#urgent-reason").inner_text().startswith("Urgent")
    assert page.locator("p.amount").inner_text() == money(document.amount, "en")
    fits_the_phone(page)
    screenshot(page, "approval.en")


# --- the stock widget's chart ---------------------------------------------------------------------------


def _forecast_for_sku_123() -> None:
    from django.utils import timezone

    from erp.models import Connector
    from foresight.models import ModelRun, SeriesForecast
    from inventory.models import StockLevel, StockMove

    connector = Connector.objects.get(slug="demo")
    level = StockLevel.objects.get(sku="SKU-123", warehouse="SH")
    now = timezone.now()
    for weeks, quantity in ((7, 95), (5, 80), (3, 62), (1, 50)):
        move = StockMove.objects.create(stock=level, quantity=quantity, delta=-6)
        StockMove.objects.filter(pk=move.pk).update(at=now - dt.timedelta(weeks=weeks))
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version="demand-browser")
    SeriesForecast.objects.update_or_create(
        connector=connector, sku="SKU-123", warehouse="SH",
        defaults={"run": run, "method": "ets", "forecast": [6, 7, 6, 8, 7, 6, 7, 6], "sigma": 2.5,
                  "fingerprint": "browser", "history_end": timezone.localdate(), "fitted_at": now})


def test_stock_widget_chart_on_a_phone(phone):
    outside_playwright_loop(_forecast_for_sku_123)
    page = phone()
    sign_in(page, "zhao.liu")
    print("\n[browser] stock widget with chart, cold cache:")
    weight = measure_page_weight(page, "/w/stock/SKU-123/")
    print(f"[browser] stock widget: {weight['requests']} requests, {weight['wire']} B on the wire")
    assert weight["wire"] <= PAGE_WEIGHT_TARGET
    chart = page.locator('figure[data-warehouse="SH"] svg.stock-chart')
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["x"] + box["width"] <= PHONE["width"]
    for part in ("polyline.past", "polygon.band", "polyline.forecast", "line.safety"):
        assert chart.locator(part).count() == 1, part
    label = chart.get_attribute("aria-label")
    assert "当前可用" in label and "8 周后约" in label
    assert page.locator("th", has_text="可用").count() == 1
    fits_the_phone(page)
    page.locator('figure[data-warehouse="SH"]').scroll_into_view_if_needed()
    screenshot(page, "stock-widget.zh-Hans")

    set_language("zhao.liu", "en")
    page.goto("/w/stock/SKU-123/")
    wait_live(page)
    label = page.locator('figure[data-warehouse="SH"] svg.stock-chart').get_attribute("aria-label")
    assert label.startswith("available now") and "in 8 weeks about" in label
    page.locator('figure[data-warehouse="SH"]').scroll_into_view_if_needed()
    screenshot(page, "stock-widget.en")


def _restock_rows() -> None:
    from erp.models import Connector
    from foresight.models import ModelRun, RestockSuggestion

    connector = Connector.objects.get(slug="demo")
    run = ModelRun.objects.create(connector=connector, kind=ModelRun.Kind.DEMAND, version="demand-browser-restock")
    rows = (("SKU-123", "伺服电机", "SH", 4, 2), ("SKU-124", "编码器", "SH", 9, 10))
    for sku, name, warehouse, cover, position in rows:
        RestockSuggestion.objects.create(
            connector=connector, run=run, sku=sku, name=name, warehouse=warehouse, warehouse_name="上海仓",
            unit="台", supplier="苏州精工", on_hand=position, reorder_point=18, erp_reorder_point=10, quantity=30,
            unit_price=3200, lead_time_days=14, lead_time_demand=12, safety_stock=6, service_level=0.95,
            days_of_cover=cover, method="ets", weekly_forecast=[6, 6, 7])


def test_receivables_and_restock_pages_on_a_phone(phone):
    outside_playwright_loop(_restock_rows)
    page = phone()
    sign_in(page, "wang.wu")
    page.goto("/w/receivables/customer/华东电子/")
    wait_live(page)
    bar = page.locator("svg.ageing").first
    box = bar.bounding_box()
    assert box and box["width"] > 300 and box["height"] >= 14
    assert "逾期" in bar.get_attribute("aria-label")
    for cell in page.locator("td.nowrap").all():  # invoice numbers and dates on one line each
        assert cell.evaluate("e => e.getClientRects().length") == 1
    fits_the_phone(page)
    screenshot(page, "receivables-widget.zh-Hans")
    set_language("wang.wu", "en")
    page.reload()
    wait_live(page)
    assert "overdue" in page.locator("svg.ageing").first.get_attribute("aria-label")
    screenshot(page, "receivables-widget.en")

    planner = phone()
    sign_in(planner, "zhao.liu", "/foresight/restock/")
    assert planner.locator("#restock > li[data-sku]").count() == 2
    assert planner.locator("svg.cover").count() == 2
    fits_the_phone(planner)
    screenshot(planner, "restock.zh-Hans")
    set_language("zhao.liu", "en")
    planner.reload()
    assert planner.locator("h1").inner_text() == "Restock suggestions"
    screenshot(planner, "restock.en")
