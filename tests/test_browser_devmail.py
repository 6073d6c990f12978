"""The dev mailbox on a phone (outside sweep): a guest's invitation, code included, is readable at
390×844 without scrolling sideways."""

from __future__ import annotations

import pytest

from .test_browser import WAIT_MS, daphne_server, outside_playwright_loop, sign_in, world  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CODE = "80231746"


def test_a_long_invitation_wraps_on_a_phone_and_its_code_is_on_screen(chromium, world):  # noqa: F811
    def prepare() -> None:
        from django.contrib.auth import get_user_model

        from boards.models import DevMailMessage

        get_user_model().objects.filter(username="zhao.liu").update(is_staff=True)
        DevMailMessage.objects.create(
            to="liu.wei@jinggong-motor.example.cn", subject="您在群“低库存 SKU-124 伺服驱动器 @ 上海仓”的验证码",
            body="您已作为访客受邀加入群“低库存 SKU-124 伺服驱动器 @ 上海仓”。\n\n请打开 "
                 f"{world.url}/g/3/join/，输入本邮箱地址和一次性验证码 {CODE}（24 小时内有效）。")

    outside_playwright_loop(prepare)
    context = chromium.new_context(base_url=world.url, viewport={"width": 390, "height": 844},
                                   device_scale_factor=1, locale="zh-CN", timezone_id="Asia/Shanghai")
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        sign_in(page, "zhao.liu", "/dev/mail/")
        page.goto("/dev/mail/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        body = page.locator("pre.body").first
        assert CODE in body.inner_text()
        box = body.bounding_box()
        assert box["x"] + box["width"] <= 390
        # The code itself is inside the screen's width, not cut off at the card's edge.
        end = page.evaluate("""(code) => {
            const pre = document.querySelector("pre.body"); const range = document.createRange();
            const text = pre.firstChild; const at = text.data.indexOf(code);
            range.setStart(text, at); range.setEnd(text, at + code.length);
            return range.getBoundingClientRect().right; }""", CODE)
        assert end <= box["x"] + box["width"]
    finally:
        context.close()
