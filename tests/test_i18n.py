"""Pages and cards speak the user's language (zh-Hans by default, English on request) and show times
in the user's time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from approvals import services
from approvals.models import ApprovalDocument
from sso.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(demo) -> ApprovalDocument:
    return ApprovalDocument.objects.get(external_id="PR-2026-0042")


def test_pages_default_to_simplified_chinese(client, users, document):
    client.force_login(users["li.si"])
    html = client.get(document.get_absolute_url()).content.decode()
    assert 'lang="zh-hans"' in html
    assert "批准" in html and "驳回" in html
    assert "Approve" not in html


def test_a_user_who_prefers_english_gets_english(client, users, document):
    Profile.objects.update_or_create(user=users["li.si"], defaults={"language": "en"})
    client.force_login(users["li.si"])
    html = client.get(document.get_absolute_url()).content.decode()
    assert 'lang="en"' in html
    assert "Approve" in html and "Reject" in html
    assert "驳回" not in html


def test_every_message_has_a_chinese_translation():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert translation.gettext("Approve") == "批准"
        assert translation.gettext("Retry the writeback of failed decisions") == "重试失败决定的回写"


def test_times_are_shown_in_the_users_time_zone(client, users, document, committed):
    with committed():
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="tz-1")
    decided = document.history.get(action="approved").at
    client.force_login(users["li.si"])

    Profile.objects.update_or_create(user=users["li.si"], defaults={"time_zone": "Asia/Shanghai"})
    shanghai = decided.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%-m月%-d日 %H:%M")
    assert shanghai in client.get(document.get_absolute_url()).content.decode()

    Profile.objects.filter(user=users["li.si"]).update(time_zone="Europe/Berlin")
    from zoneinfo import ZoneInfo

    berlin = decided.astimezone(ZoneInfo("Europe/Berlin")).strftime("%-m月%-d日 %H:%M")
    assert berlin != shanghai
    assert berlin in client.get(document.get_absolute_url()).content.decode()
