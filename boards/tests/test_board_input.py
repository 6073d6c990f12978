"""Malformed input on a board's actions (outside sweep): a clear 400 in the page's language, never a 500,
and nothing written to the ERP."""

from __future__ import annotations

import pytest

from boards.models import BoardActivity

from .test_boards import confirm, line_of, redeem, war_room  # noqa: F401 - the war room fixture

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("qty", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "abc"])
def test_a_quantity_that_is_not_a_number_is_a_400_and_changes_nothing(war_room, client, committed, qty):  # noqa: F811
    redeem(client, committed, war_room)
    line = line_of("PO-2026-0301")
    response = confirm(client, committed, war_room, line, "2026-12-20", qty=qty)
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.content.decode()
    line.refresh_from_db()
    assert line.confirmed_date is None and line.confirmed_qty is None and line.version == 1
    assert not BoardActivity.objects.filter(action="confirm_delivery", outcome="done").exists()


@pytest.mark.parametrize("day", ["9999-12-31", "2020-01-01"])
def test_a_delivery_date_far_from_today_is_a_400_and_changes_nothing(war_room, client, committed, day):  # noqa: F811
    redeem(client, committed, war_room)
    line = line_of("PO-2026-0301")
    response = confirm(client, committed, war_room, line, day)
    assert response.status_code == 400
    line.refresh_from_db()
    assert line.confirmed_date is None and line.version == 1
    assert not BoardActivity.objects.filter(action="confirm_delivery", outcome="done").exists()
