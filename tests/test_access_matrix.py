"""Every seeded user × every seeded approval document × every surface that shows one (page, API,
widget, the bot's answer, the websocket topic) against one table written out here.

The table is the demo company's policy in words: buyers read their own requests, purchase managers
requisitions and purchase orders, finance managers every spending document, warehouse keepers
requisitions (to prepare goods), sales nothing of approvals; the admin account holds no ERP role.
A surface that shows more or less than the table fails, and a new seeded user or document fails
until the table says what they may see.
"""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from approvals.models import ApprovalDocument
from widgets.consumers import LiveConsumer

pytestmark = pytest.mark.django_db

PR_42, PR_43, PR_44, EC_107 = "PR-2026-0042", "PR-2026-0043", "PR-2026-0044", "EC-2026-0107"
REQUISITIONS = {PR_42, PR_43, PR_44}

# user → the seeded documents they may read; every other (user, document) pair must be refused.
MAY_READ: dict[str, set[str]] = {
    "zhang.san": REQUISITIONS,  # 采购员: his own requests
    "li.si": REQUISITIONS,  # 采购经理: requisitions only, not claims through the amount rule
    "wang.wu": REQUISITIONS | {EC_107},  # 财务经理: every spending document ≤ 200,000
    "zhao.liu": REQUISITIONS,  # 仓库管理员: requisitions (prepare goods), never expense claims
    "chen.qi": set(),  # 销售: no approval rule
    "admin": set(),  # superuser of Django admin, no ERP role: admin is not a reader of documents
}


@pytest.fixture
def seeded(demo, connector):
    """The world ``manage.py demo`` serves: the demo plus the scenarios' rules."""
    from notifications.demo import setup_notifications_demo

    setup_notifications_demo(connector)
    users = {u.username: u for u in get_user_model().objects.all()}
    documents = {d.external_id: d for d in ApprovalDocument.objects.all()}
    # The table covers exactly the seeded world.
    assert set(users) == set(MAY_READ)
    assert set(documents) == REQUISITIONS | {EC_107}
    return users, documents


def _bot_answer(client: Client, number: str) -> str:
    response = client.post("/api/bot/ask", {"text": f"{number} 到哪一步了"}, content_type="application/json")
    assert response.status_code in (200, 403), response.content
    return response.content.decode()


def test_every_user_every_document_every_http_surface(seeded):
    users, documents = seeded
    wrong = []
    for username, user in users.items():
        client = Client()
        client.force_login(user)
        for number, document in documents.items():
            expected = number in MAY_READ[username]
            page = client.get(f"/approvals/{document.pk}/")
            api = client.get(f"/api/approvals/{document.pk}/")
            widget = client.get(f"/w/approval/{document.pk}/")
            seen = {
                "page": page.status_code == 200 and document.title in page.content.decode(),
                "api": api.status_code == 200 and api.json().get("external_id") == number,
                "widget": widget.status_code == 200 and document.title in widget.content.decode(),
                "bot": document.title in _bot_answer(client, number),
            }
            for surface, shown in seen.items():
                if shown != expected:
                    wrong.append(f"{username} {'should' if expected else 'must not'} read {number} on {surface}")
            refused = (page.status_code, api.status_code, widget.status_code) == (404, 404, 404)
            # Refused looks exactly like missing: 404, and nothing of the document leaks.
            if not expected and (not refused or document.title in json.dumps(api.json(), ensure_ascii=False)):
                wrong.append(f"{username} is not refused {number} with 404s everywhere")
    assert not wrong, "\n".join(wrong)


@pytest.mark.django_db(transaction=True)
async def test_every_user_every_document_websocket_topic(transactional_db):
    from asgiref.sync import sync_to_async

    from erp.connectors.demo.services import ensure_connector
    from notifications.demo import setup_notifications_demo
    from portal.demo import setup_demo

    def world():
        setup_demo()
        setup_notifications_demo(ensure_connector())
        return ({u.username: u for u in get_user_model().objects.all()},
                {d.external_id: d.topic for d in ApprovalDocument.objects.all()})

    users, topics = await sync_to_async(world)()
    assert set(users) == set(MAY_READ) and set(topics) == REQUISITIONS | {EC_107}
    wrong = []
    for username, user in users.items():
        ws = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/")
        ws.scope["user"] = user
        connected, _code = await ws.connect()
        assert connected
        for number, topic in topics.items():
            await ws.send_json_to({"subscribe": topic})
            answer = await ws.receive_json_from(timeout=3)
            subscribed = answer == {"subscribed": topic}
            if subscribed != (number in MAY_READ[username]):
                wrong.append(f"{username} subscribe {topic} ({number}): {answer}")
        await ws.disconnect()
    assert not wrong, "\n".join(wrong)
