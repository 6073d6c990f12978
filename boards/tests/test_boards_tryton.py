"""The low-stock board on a real Tryton (trytond started by erp/connectors/tryton/conftest.py): a stock
change polled from Tryton carries the item's supplier (``purchase.product_supplier``) and its contact,
the buyer opens the group from the card, the supplier's contact redeems the emailed code, sees their
own purchase line's quantities and dates (never the price, never the other supplier's order) and
confirms a delivery date that Tryton then plans with; stale and repeated actions are refused or
applied once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail

from erp.connectors.tryton.conftest import tryton, tryton_template  # noqa: F401 - the running trytond
from erp.connectors.tryton.seed_tryton import OTHER_SUPPLIER_EMAIL, SUPPLIER_EMAIL, company_today
from erp.connectors.tryton.testing import TrytonServer
from notifications.models import ChatGroup
from tests.conftest import unlock_phone

from .conftest import code_in, notice_about, setup_tryton_board

pytestmark = [pytest.mark.django_db, pytest.mark.tryton]
TODAY = company_today()


def tryton_client(server: TrytonServer):
    from erp.connectors.tryton.client import TrytonClient

    return TrytonClient(server.base_url, server.database, "li.si", server.password)


def planned_dates(server: TrytonServer, line_id: str) -> list[dt.date]:
    with tryton_client(server) as erp:
        return [m["planned_date"] for m in erp.search_read(
            "stock.move", [("origin", "=", f"purchase.line,{line_id}")], ["planned_date"])]


def notes(server: TrytonServer, line_id: str) -> list[str]:
    with tryton_client(server) as erp:
        return [n["message"] for n in erp.search_read("ir.note", [("resource", "=", f"purchase.line,{line_id}")],
                                                      ["message"])]


@pytest.fixture
def war_room(tryton: TrytonServer, client, committed) -> tuple[ChatGroup, Any]:  # noqa: F811
    with committed():
        _settings, buyer = setup_tryton_board(tryton)
    message = notice_about(buyer, "SKU-123")
    unlock_phone(client, buyer)
    with committed():
        client.post(f"/dev/inbox/message/{message.pk}/action/group/")
    client.logout()
    return ChatGroup.objects.get(purpose="war_room"), buyer


def redeem(client, committed, group: ChatGroup) -> None:
    [invitation] = [m for m in mail.outbox if SUPPLIER_EMAIL in m.to]
    with committed():
        response = client.post(f"/g/{group.pk}/join/", {"email": SUPPLIER_EMAIL, "code": code_in(invitation.body)})
    assert response.status_code == 302, response.content.decode()


def test_the_item_supplier_from_tryton_is_invited_and_sees_only_their_line(tryton, war_room, client,  # noqa: F811
                                                                            committed):
    group, _buyer = war_room
    assert group.members.filter(external_email=SUPPLIER_EMAIL, external_name="刘伟").exists()
    assert set(group.members.exclude(user=None).values_list("user__username", flat=True)) == {"li.si", "wang.wu"}
    redeem(client, committed, group)
    page = client.get(f"/g/{group.pk}/").content.decode()
    mine, other = tryton.seed["purchases"][SUPPLIER_EMAIL], tryton.seed["purchases"][OTHER_SUPPLIER_EMAIL]
    assert f'data-order="{mine["number"]}"' in page and f'data-order="{other["number"]}"' not in page
    assert "3000" not in page and "3100" not in page and "单价" not in page  # no prices
    assert "华南传动" not in page  # nor the other supplier
    assert str(TODAY + dt.timedelta(days=14)) in page  # the promised date Tryton planned


def test_guest_confirms_a_date_tryton_plans_with_it_once(tryton, war_room, client, committed):  # noqa: F811
    from erp.connectors import get_connector
    from erp.models import Connector

    group, buyer = war_room
    redeem(client, committed, group)
    line_id = str(tryton.seed["purchases"][SUPPLIER_EMAIL]["line"])
    erp = get_connector("tryton", Connector.objects.get(slug="tryton"))
    line = erp.purchase_order_line(line_id)
    day = TODAY + dt.timedelta(days=9)
    form = {"line": line_id, "date": day.isoformat(), "qty": "8", "version": line.version, "key": "k1",
            "seen_confirmed_date": "", "seen_promised_date": str(line.promised_date), "seen_qty": str(line.qty),
            "seen_confirmed_qty": ""}
    with committed():
        response = client.post(f"/g/{group.pk}/act/confirm_delivery/", form)
    assert response.status_code == 200, response.content.decode()
    assert planned_dates(tryton, line_id) == [day]
    with committed():
        client.post(f"/g/{group.pk}/act/confirm_delivery/", form)  # a double tap
    assert len(notes(tryton, line_id)) == 1
    after = erp.purchase_order_line(line_id)
    assert (after.confirmed_date, after.confirmed_qty) == (day, 8) and "刘伟" in after.confirmed_by

    # The buyer expedites from a board read before the supplier's confirmation: stale, with what changed.
    member = client.__class__()
    member.force_login(buyer)
    with committed():
        stale = member.post(f"/g/{group.pk}/act/expedite/", {
            "line": line_id, "version": line.version, "key": "x1", "seen_confirmed_date": "",
            "seen_promised_date": str(line.promised_date), "seen_qty": str(line.qty), "seen_confirmed_qty": ""})
    assert stale.status_code == 409
    assert day.isoformat() in stale.content.decode()
    assert len(notes(tryton, line_id)) == 1
    with committed():
        done = member.post(f"/g/{group.pk}/act/expedite/", {"line": line_id, "version": after.version, "key": "x2"})
    assert done.status_code == 200, done.content.decode()
    assert any("outcome=expedite" in note for note in notes(tryton, line_id))
    assert erp.purchase_order_line(line_id).expedite_requested


def test_guest_cannot_act_on_the_other_suppliers_line(tryton, war_room, client, committed):  # noqa: F811
    group, _buyer = war_room
    redeem(client, committed, group)
    other = str(tryton.seed["purchases"][OTHER_SUPPLIER_EMAIL]["line"])
    with committed():
        response = client.post(f"/g/{group.pk}/act/confirm_delivery/", {
            "line": other, "date": (TODAY + dt.timedelta(days=3)).isoformat(), "qty": "", "version": "1",
            "key": "k9"})
    assert response.status_code == 404
    assert notes(tryton, other) == []
