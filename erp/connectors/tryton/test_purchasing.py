"""Tryton's purchasing capabilities (group boards) against a running trytond (conftest.py): open lines
with promised dates, a confirmed delivery date written on the incoming moves once per key, an
expedite note, and stale refusals (the portal's version, and Tryton's own ``_timestamp`` lock)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from erp.connectors.base import (
    CONFIRM_DELIVERY,
    EXPEDITE_ORDER,
    PURCHASE_ORDERS,
    ConnectorError,
    LineConfirmation,
    StaleObject,
    supports,
)

from .client import TrytonError
from .seed_tryton import OTHER_SUPPLIER_EMAIL, SUPPLIER_EMAIL, company_today
from .testing import TrytonServer
from .tests import client, connector

pytestmark = pytest.mark.tryton
TODAY = company_today()


@pytest.fixture(autouse=True)
def fresh_reads(settings):
    """These tests change Tryton behind the connector's back and read at once: no cached lines."""
    settings.TRYTON_PURCHASE_LINES_CACHE_SECONDS = 0


def moves_in_tryton(server: TrytonServer, line_id: str) -> list[dict[str, Any]]:
    """The line's incoming moves as Tryton's own client reads them (another session than the connector's)."""
    return client(server, "li.si").search_read(
        "stock.move", [("origin", "=", f"purchase.line,{line_id}")], ["planned_date", "origin_planned_date", "state"])


def notes_in_tryton(server: TrytonServer, line_id: str) -> list[str]:
    return [row["message"] for row in client(server, "li.si").search_read(
        "ir.note", [("resource", "=", f"purchase.line,{line_id}")], ["message"], order=[("id", "ASC")])]


def line_of(server: TrytonServer, email: str):
    [line] = connector(server).purchase_order_lines(sku="SKU-123", supplier_email=email)
    return line


def test_open_purchase_lines_of_an_item_with_promised_dates(tryton: TrytonServer) -> None:
    erp = connector(tryton)
    assert all(supports(erp, c) for c in (PURCHASE_ORDERS, CONFIRM_DELIVERY, EXPEDITE_ORDER))
    purchases = tryton.seed["purchases"]
    assert {p["state"] for p in purchases.values()} == {"processing"}  # confirmed in Tryton: moves exist

    lines = {line.supplier_email: line for line in erp.purchase_order_lines(sku="SKU-123")}
    assert set(lines) == {SUPPLIER_EMAIL, OTHER_SUPPLIER_EMAIL}
    mine = lines[SUPPLIER_EMAIL]
    assert mine.id == str(purchases[SUPPLIER_EMAIL]["line"]) and mine.order == purchases[SUPPLIER_EMAIL]["number"]
    assert (mine.supplier, mine.sku, mine.qty, mine.unit_price, mine.currency) == (
        "精工电机", "SKU-123", Decimal("10"), Decimal("3000"), "CNY")
    assert (mine.warehouse, mine.warehouse_name) == ("SH", "上海仓")
    assert mine.promised_date == TODAY + dt.timedelta(days=14)
    assert lines[OTHER_SUPPLIER_EMAIL].promised_date == TODAY + dt.timedelta(days=21)

    # A supplier's contact sees their own lines only; the address matches whatever its case.
    assert [line.order for line in erp.purchase_order_lines(sku="SKU-123", supplier_email=SUPPLIER_EMAIL.upper())] \
        == [mine.order]
    assert erp.purchase_order_lines(sku="SKU-123", supplier_email="liu.wei@elsewhere.example") == []
    assert erp.purchase_order_lines(sku="SKU-123", supplier_email="%") == []  # no wildcard sneaks in
    assert erp.purchase_order_lines(sku="SKU-456") == []
    assert erp.purchase_order_line(mine.id) == mine
    assert erp.purchase_order_line("999999") is None and erp.purchase_order_line("x") is None


def test_confirmed_date_is_the_incoming_moves_planned_date_once_per_key(tryton: TrytonServer) -> None:
    erp = connector(tryton)
    line = line_of(tryton, SUPPLIER_EMAIL)
    day = TODAY + dt.timedelta(days=10)
    confirmation = LineConfirmation(line_id=line.id, delivery_date=day, quantity=Decimal("6"),
                                    expected_version=line.version, actor="刘伟 (guest)", idempotency_key="board:1:k1")
    after = erp.confirm_delivery(confirmation)
    assert (after.confirmed_date, after.confirmed_qty, after.confirmed_by) == (day, Decimal("6"), "刘伟 (guest)")
    assert after.promised_date == line.promised_date and after.version != line.version
    [move] = moves_in_tryton(tryton, line.id)
    assert move["planned_date"] == day  # Tryton plans with the supplier's date now
    assert move["origin_planned_date"] == line.promised_date  # and still knows what was promised
    assert len(notes_in_tryton(tryton, line.id)) == 1

    again = erp.confirm_delivery(confirmation)  # a retry: same key, the version it was sent with
    assert again == after
    assert len(notes_in_tryton(tryton, line.id)) == 1

    with pytest.raises(ConnectorError, match="was used to confirm_delivery"):
        erp.expedite_line(line.id, expected_version=after.version, actor="x", idempotency_key="board:1:k1")
    with pytest.raises(ConnectorError, match="at most the ordered quantity") as refused:
        erp.confirm_delivery(LineConfirmation(line_id=line.id, delivery_date=day, quantity=Decimal("11"),
                                              expected_version=after.version, actor="x", idempotency_key="k2"))
    assert refused.value.permanent
    with pytest.raises(ConnectorError, match="idempotency key"):
        erp.confirm_delivery(LineConfirmation(line_id=line.id, delivery_date=day, quantity=None,
                                              expected_version=after.version, actor="x", idempotency_key=""))
    assert len(notes_in_tryton(tryton, line.id)) == 1


def test_a_date_moved_in_tryton_makes_the_portals_form_stale(tryton: TrytonServer) -> None:
    erp = connector(tryton)
    seen = line_of(tryton, OTHER_SUPPLIER_EMAIL)
    [move] = moves_in_tryton(tryton, seen.id)
    moved = TODAY + dt.timedelta(days=30)
    client(tryton, "li.si").model("stock.move", "write", [move["id"]], {"planned_date": moved})  # a buyer in Tryton

    with pytest.raises(StaleObject) as stale:
        erp.confirm_delivery(LineConfirmation(line_id=seen.id, delivery_date=TODAY + dt.timedelta(days=5),
                                              quantity=None, expected_version=seen.version, actor="x",
                                              idempotency_key="board:1:stale"))
    assert stale.value.current.confirmed_date == moved  # what changed, for the refusal
    assert seen.facts()["confirmed_date"] != stale.value.current.facts()["confirmed_date"]
    assert moves_in_tryton(tryton, seen.id)[0]["planned_date"] == moved  # nothing written
    assert notes_in_tryton(tryton, seen.id) == []


def test_tryton_refuses_a_move_changed_between_read_and_write(tryton: TrytonServer, monkeypatch) -> None:
    """The portal's version matched, then someone wrote the move: Tryton's own lock refuses, the
    key's note is taken back, and the caller gets a stale refusal with the line as it is now."""
    erp = connector(tryton)
    line = line_of(tryton, OTHER_SUPPLIER_EMAIL)
    read_before = erp._open_line(line.id).open_moves
    client(tryton, "li.si").model("stock.move", "write", [read_before[0]["id"]],
                                  {"planned_date": TODAY + dt.timedelta(days=31)})
    with pytest.raises(TrytonError) as lock:
        erp._plan(read_before, TODAY + dt.timedelta(days=3))
    assert lock.value.kind == "ConcurrencyException"

    line = line_of(tryton, OTHER_SUPPLIER_EMAIL)
    write_note = erp._write_note

    def someone_writes_the_move_meanwhile(*args, **kwargs) -> int:
        note_id = write_note(*args, **kwargs)
        client(tryton, "li.si").model("stock.move", "write", [read_before[0]["id"]],
                                      {"planned_date": TODAY + dt.timedelta(days=32)})
        return note_id

    monkeypatch.setattr(erp, "_write_note", someone_writes_the_move_meanwhile)
    with pytest.raises(StaleObject) as stale:
        erp.confirm_delivery(LineConfirmation(line_id=line.id, delivery_date=TODAY + dt.timedelta(days=3),
                                              quantity=None, expected_version=line.version, actor="x",
                                              idempotency_key="board:1:race"))
    assert stale.value.current.confirmed_date == TODAY + dt.timedelta(days=32)
    assert notes_in_tryton(tryton, line.id) == []


def test_expedite_is_a_note_on_the_line_once_per_key(tryton: TrytonServer) -> None:
    erp = connector(tryton)
    line = line_of(tryton, OTHER_SUPPLIER_EMAIL)
    assert not line.expedite_requested
    after = erp.expedite_line(line.id, expected_version=line.version, actor="张三", idempotency_key="board:1:x1")
    assert after.expedite_requested and after.version != line.version
    again = erp.expedite_line(line.id, expected_version=line.version, actor="张三", idempotency_key="board:1:x1")
    assert again == after
    [note] = notes_in_tryton(tryton, line.id)
    assert "outcome=expedite" in note and "deliver sooner" in note
    with pytest.raises(StaleObject):  # a new request from a board that had not seen the first
        erp.expedite_line(line.id, expected_version=line.version, actor="张三", idempotency_key="board:1:x2")
    assert len(notes_in_tryton(tryton, line.id)) == 1


def test_an_items_lines_are_cached_briefly_and_dropped_when_the_portal_writes(tryton: TrytonServer, settings,
                                                                             monkeypatch) -> None:
    from django.core.cache import cache

    settings.TRYTON_PURCHASE_LINES_CACHE_SECONDS = 60
    cache.clear()
    erp = connector(tryton)
    calls: list[str] = []
    search_read = erp.client.search_read
    monkeypatch.setattr(erp.client, "search_read", lambda model, *a, **k: calls.append(model) or search_read(
        model, *a, **k))
    first = erp.purchase_order_lines(sku="SKU-123")
    read_calls = len(calls)
    assert read_calls == 4  # lines, moves, notes, the suppliers' addresses
    assert erp.purchase_order_lines(sku="SKU-123") == first  # every other board refetching: no call
    assert [line.supplier_email for line in erp.purchase_order_lines(sku="SKU-123", supplier_email=SUPPLIER_EMAIL)
            ] == [SUPPLIER_EMAIL]
    assert len(calls) == read_calls

    line = next(line for line in first if line.supplier_email == SUPPLIER_EMAIL)
    erp.expedite_line(line.id, expected_version=erp.purchase_order_line(line.id).version, actor="张三",
                      idempotency_key="board:9:cache")
    after = {line.supplier_email: line for line in erp.purchase_order_lines(sku="SKU-123")}
    assert after[SUPPLIER_EMAIL].expedite_requested  # the portal's own write is seen at once

