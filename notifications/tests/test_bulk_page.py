"""The bulk approval page's filter: a typo in it is answered on the page, in the page's language."""

from __future__ import annotations

import pytest
from django.utils import translation

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["abc", "NaN", "1e999999", "12,5"])
def test_an_amount_that_is_not_a_number_shows_the_form_again_with_the_reason(client, users, value):
    client.force_login(users["li.si"])
    response = client.get("/notifications/bulk-approve/", {"max_amount": value, "kind": "expense_claim"},
                          HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 400
    # Not a bare text/plain body without a charset (which a browser shows as mojibake), but the page.
    assert response["Content-Type"] == "text/html; charset=utf-8"
    page = response.content.decode()
    with translation.override("zh-hans"):
        assert translation.gettext("The amount limit must be a number.") in page
    assert 'name="max_amount"' in page and f'value="{value}"' in page
    assert '<option value="expense_claim" selected>' in page


def test_a_valid_amount_still_filters(client, users):
    client.force_login(users["li.si"])
    response = client.get("/notifications/bulk-approve/", {"max_amount": "100.5"})
    assert response.status_code == 200
    assert 'aria-invalid' not in response.content.decode()
