"""Scenario 2 on a real Synapse: the war room is a real room, members invited, the widget state event
present, and the room archived (renamed, read-only) when stock is back above the safety level."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from erp.connectors.demo import services as erp
from notifications.models import ChatGroup, NotificationRule
from sso.models import ImIdentity

pytestmark = pytest.mark.django_db


def state(synapse, room_id: str, event_type: str, key: str = "") -> dict:
    response = httpx.get(
        f"{synapse.url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/{event_type}/{quote(key, safe='')}",
        headers={"Authorization": f"Bearer {synapse.bot.access_token}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_scenario_2_war_room_on_synapse(scenarios, users, matrix, fresh_user, committed):
    ImIdentity.objects.create(user=users["zhang.san"], platform="matrix", external_id=matrix.alice.user_id)
    ImIdentity.objects.create(user=users["zhao.liu"], platform="matrix", external_id=matrix.bob.user_id)
    NotificationRule.objects.filter(event_type="erp.stock.changed").update(group_mode="auto", platforms=["matrix"])

    with committed():
        erp.adjust_stock("SKU-124", "SH", -5)
    group = ChatGroup.objects.get(purpose="war_room")
    assert group.platform == "matrix" and group.chat_id.startswith("!"), group.error
    room = group.chat_id
    assert state(matrix, room, "m.room.name")["name"] == group.name
    for person in (matrix.alice, matrix.bob):
        assert state(matrix, room, "m.room.member", person.user_id)["membership"] == "invite"
    # The supplier's contact is recorded but has no Matrix id: not invited, and the row says so.
    assert group.members.get(user=None).invited is False
    widgets = httpx.get(f"{matrix.url}/_matrix/client/v3/rooms/{quote(room, safe='')}/state",
                        headers={"Authorization": f"Bearer {matrix.bot.access_token}"}, timeout=10).json()
    pinned = [e for e in widgets if e["type"] == "im.vector.modular.widgets"]
    pinned_urls = [e["content"].get("url", "") for e in pinned]
    assert any(url.endswith("/w/matrix/?path=/w/stock/SKU-124/&widgetId=$matrix_widget_id") for url in pinned_urls)
    # The group's board too, through the same OpenID bootstrap, and on top of the room.
    board = f"/w/matrix/?path=/g/{group.pk}/&widgetId=$matrix_widget_id"
    assert any(url.endswith(board) for url in pinned_urls), pinned_urls
    layout = state(matrix, room, "io.element.widgets.layout")["widgets"]
    [top] = [e for e in pinned if e["content"]["url"].endswith(board)]
    assert layout[top["state_key"]]["container"] == "top"
    assert group.posts.exclude(message_id="").count() >= 2
    # Someone joins later (a second buyer): invited into the same room; the same create key, the same room.
    from im.platforms.matrix.adapter import MatrixAdapter

    late = fresh_user()
    MatrixAdapter().add_members(room, [late.user_id])
    assert state(matrix, room, "m.room.member", late.user_id)["membership"] == "invite"
    assert MatrixAdapter().create_group("x", [], idempotency_key=f"group:{group.idempotency_key}").chat_id == room

    with committed():
        erp.adjust_stock("SKU-124", "SH", 20)
    group.refresh_from_db()
    assert group.state == "archived", group.error
    assert state(matrix, room, "m.room.name")["name"].startswith("[已归档")
    assert state(matrix, room, "m.room.power_levels")["events_default"] == 100
