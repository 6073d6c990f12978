"""The one typed reader of ERP payloads: every check, its limits from the model field, paths in errors."""

import datetime as dt
from decimal import Decimal

import pytest

from approvals.models import ApprovalDocument, ApprovalLine
from erp.events import EventDataError, validate
from erp.payload import boolean, date, decimal, decimal_for, integer, read, text
from finance.models import Receivable
from inventory.models import StockLevel


def test_text_reads_strings_and_whole_numbers_and_names_the_path():
    data = read({"document": {"id": 42, "title": "  伺服电机 ", "empty": "", "flag": True}})
    doc = data["document"]
    assert doc["id"].tame(text()) == "42"
    assert doc["title"].tame(text()) == "伺服电机"
    assert doc["missing"].tame(text(required=False, default="x")) == "x"
    with pytest.raises(EventDataError, match=r"^data\.document\.empty is required$"):
        doc["empty"].tame(text())
    with pytest.raises(EventDataError, match=r"data\.document\.flag must be a string"):
        doc["flag"].tame(text())
    with pytest.raises(EventDataError, match="longer than 3"):
        doc["title"].tame(text(max_length=3))


def test_decimal_limits_come_from_the_column():
    """One limit per column: the amount of a document fits 16 digits with 2 decimals (< 1e14), a line's
    quantity 16 with 4 (< 1e12). The old readers allowed a 1e13 quantity that the column cannot hold."""
    assert read({"a": "99999999999999.99"})["a"].tame(decimal_for(ApprovalDocument, "amount")) == Decimal(
        "99999999999999.99")
    with pytest.raises(EventDataError, match="data.qty is out of range"):
        read({"qty": "1e13"})["qty"].tame(decimal_for(ApprovalLine, "qty"))
    with pytest.raises(EventDataError, match="out of range"):
        read({"q": 10**12})["q"].tame(decimal_for(StockLevel, "quantity"))
    assert read({"amount": "1e13"})["amount"].tame(decimal_for(Receivable, "amount")) == Decimal("1e13")


@pytest.mark.parametrize("raw", ["lots", "NaN", "Infinity", True, None, [1]])
def test_decimal_refuses_what_is_not_a_finite_number(raw):
    with pytest.raises(EventDataError, match="^data.x "):
        read({"x": raw})["x"].tame(decimal(max_digits=16, decimal_places=2))


def test_decimal_default_and_numbers():
    check = decimal(max_digits=16, decimal_places=4, default=Decimal("0"))
    assert read({})["x"].tame(check) == 0
    assert read({"x": 2.5})["x"].tame(check) == Decimal("2.5")


def test_dates_booleans_integers_objects_and_arrays():
    data = read({"due": "2026-06-30", "bad": "30/06/2026", "urgent": True, "step": 3, "lines": [{"n": 1}, 2]})
    assert data["due"].tame(date()) == dt.date(2026, 6, 30)
    assert data["none"].tame(date(required=False)) is None
    with pytest.raises(EventDataError, match="data.bad must be a date"):
        data["bad"].tame(date())
    assert data["urgent"].tame(boolean()) is True and data["other"].tame(boolean(default=False)) is False
    with pytest.raises(EventDataError, match="true or false"):
        data["step"].tame(boolean())
    assert data["step"].tame(integer(minimum=1, maximum=50)) == 3
    with pytest.raises(EventDataError, match="from 1 to 2"):
        data["step"].tame(integer(minimum=1, maximum=2))
    lines = list(data["lines"].items())
    assert lines[0]["n"].tame(text()) == "1"
    with pytest.raises(EventDataError, match=r"data\.lines\[1\] must be an object"):
        lines[1]["n"]
    assert list(data["absent"].items()) == []
    with pytest.raises(EventDataError, match="data.due must be an array"):
        list(data["due"].items())


def test_the_registered_schemas_validate(db):
    validate("erp.approval.requested", {"document": {"id": "PR-1", "kind": "k", "title": "t", "amount": "1.00",
                                                     "requester": "zhang.san"}, "approvers": ["li.si"]})
    with pytest.raises(EventDataError, match=r"^data\.approvers: \[\] should be non-empty"):
        validate("erp.approval.requested", {"document": {"id": "PR-1", "kind": "k", "title": "t", "amount": "1",
                                                         "requester": "z"}, "approvers": []})
    with pytest.raises(EventDataError, match=r"^data\.receivable\.due_date: "):
        validate("erp.receivable.changed", {"receivable": {"id": "I", "customer": "c", "amount": "1",
                                                           "due_date": "30/06/2026"}})
    with pytest.raises(EventDataError, match=r"^data\.quantity: "):
        validate("erp.stock.changed", {"sku": "S", "name": "n", "warehouse": "W", "quantity": "lots"})
    validate("erp.order.status_changed", {"order": {"id": "SO", "customer": "c", "status": "s", "amount": ""}})
    validate("erp.unknown", {"anything": 1})  # no schema registered: the intake refuses the type itself
