"""Every platform's callback endpoint against bad input: empty, random bytes, truncated and deeply
nested JSON, XML where JSON is expected (and the reverse), wrongly encoded text, an oversized body,
and headers that look right but sign nothing. Always a 4xx, never a 500, and nothing is handed on to
be acted upon. (Replays with old timestamps and bad signatures are in each adapter's own tests.)"""

from __future__ import annotations

import json

import pytest

from im import inbound
from im.platforms.agora.adapter import AgoraAdapter
from im.platforms.agora.tests import CONFIG as AGORA
from im.platforms.dingtalk.adapter import DingTalkAdapter
from im.platforms.dingtalk.tests import CONFIG as DINGTALK
from im.platforms.feishu.adapter import FeishuAdapter
from im.platforms.feishu.tests import CONFIG as FEISHU
from im.platforms.slack.adapter import SlackAdapter
from im.platforms.slack.client import SlackClient
from im.platforms.slack.tests import SECRET as SLACK_SECRET
from im.platforms.webhook.adapter import WebhookAdapter
from im.platforms.webhook.tests import SECRET as WEBHOOK_SECRET
from im.platforms.wecom.adapter import WeComAdapter
from im.platforms.wecom.tests import CONFIG as WECOM

ADAPTERS = {
    "wecom": lambda: WeComAdapter(WECOM),
    "feishu": lambda: FeishuAdapter(FEISHU),
    "dingtalk": lambda: DingTalkAdapter(DINGTALK),
    "slack": lambda: SlackAdapter(SlackClient("xoxb-test"), signing_secret=SLACK_SECRET),
    "agora": lambda: AgoraAdapter(**AGORA),
    "webhook": lambda: WebhookAdapter(url="http://127.0.0.1:9/hook", secret=WEBHOOK_SECRET),
}

nested = "[" * 5000 + "]" * 5000
BODIES = {
    "empty": b"",
    "random bytes": bytes(range(256)) * 4,
    "truncated json": b'{"encrypt": "abc',
    "deeply nested json": nested.encode(),
    "wrong json types": json.dumps({"encrypt": 12, "challenge": [], "type": {"a": 1}, "token": None}).encode(),
    "xml": b"<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt><![CDATA[%%%]]></Encrypt></xml>",
    "xml bomb-ish": b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb">]><xml><Encrypt>&b;&b;</Encrypt></xml>',
    "utf-16 json": json.dumps({"type": "url_verification", "challenge": "x"}).encode("utf-16"),
    "gb18030 form": "payload=中文".encode("gb18030"),
    "oversized": b'{"a": "' + b"x" * (3 * 1024 * 1024) + b'"}',
}
# Headers shaped like each platform's signed request, signing nothing.
HEADERS = {
    "HTTP_X_SLACK_REQUEST_TIMESTAMP": "1700000000", "HTTP_X_SLACK_SIGNATURE": "v0=00",
    "HTTP_X_LARK_REQUEST_TIMESTAMP": "1700000000", "HTTP_X_LARK_REQUEST_NONCE": "n",
    "HTTP_X_LARK_SIGNATURE": "00", "HTTP_WEBHOOK_ID": "msg_1", "HTTP_WEBHOOK_TIMESTAMP": "1700000000",
    "HTTP_WEBHOOK_SIGNATURE": "v1,AAAA",
}
QUERY = "?msg_signature=00&timestamp=1700000000&nonce=1&signature=00&echostr=%25%25"


@pytest.fixture
def platforms(settings, monkeypatch):
    settings.IM_ADAPTERS = ["devinbox", *ADAPTERS]
    monkeypatch.setattr(inbound, "get_adapter", lambda platform: ADAPTERS[platform]())
    handed_on: list[tuple] = []
    from im import tasks

    monkeypatch.setattr(tasks.handle_callback, "delay", lambda *args: handed_on.append(args))
    return handed_on


@pytest.mark.parametrize("platform", sorted(ADAPTERS))
@pytest.mark.parametrize("name", sorted(BODIES))
def test_bad_callbacks_get_a_4xx_and_nothing_is_acted_upon(client, db, platforms, platform, name):
    body = BODIES[name]
    for content_type in ("application/json", "text/xml", "application/x-www-form-urlencoded"):
        response = client.post(f"/api/im/{platform}/callback{QUERY}", data=body, content_type=content_type,
                               **HEADERS)
        assert 400 <= response.status_code < 500, (platform, name, content_type, response.status_code,
                                                   response.content[:200])
    assert platforms == []
