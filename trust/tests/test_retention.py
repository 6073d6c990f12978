"""Retention: due records destroyed in batches, holds respected, platform delete asked, audit kept."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalDocument
from erp.models import InboundEvent
from im.models import Delivery, MessageRef
from im.platforms.devinbox.adapter import DevInboxAdapter
from im.platforms.devinbox.models import DevInboxMessage
from trust import retention
from trust.models import AuditEntry, LegalHold, RetentionPolicy
from trust.services import record, verify

LATER = timezone.now() + dt.timedelta(days=40)


def test_sent_cards_are_destroyed_with_their_messages_and_the_platform_copy(demo):
    sent = Delivery.objects.filter(status="sent").count()
    assert sent and DevInboxMessage.objects.count()
    RetentionPolicy.objects.create(kind="sent_cards", keep_days=30)
    result = retention.run(now=LATER, batch_size=3)
    assert result.destroyed["sent_cards"] == sent
    assert not Delivery.objects.exclude(status="queued").exists()
    assert not MessageRef.objects.exists()
    assert not DevInboxMessage.objects.exists()  # asked the (dev inbox) platform to delete them
    entries = AuditEntry.objects.filter(action="retention.destroyed", summary__kind="sent_cards")
    assert sum(e.summary["count"] for e in entries) == sent and entries.count() > 1  # batches of 3
    assert all(set(e.summary) == {"kind", "platform", "count"} for e in entries)  # never content
    assert verify().ok


def test_nothing_is_destroyed_before_its_time(demo):
    RetentionPolicy.objects.create(kind="sent_cards", keep_days=30)
    RetentionPolicy.objects.create(kind="event_payloads", keep_days=30)
    assert retention.run().total == 0


def test_legal_hold_on_a_document_and_on_a_user(demo, users):
    document = ApprovalDocument.objects.first()
    held_topic = f"approval.{document.pk}"
    LegalHold.objects.create(scope="document", document=document, reason="dispute")
    LegalHold.objects.create(scope="user", user=users["wang.wu"], reason="investigation")
    kept = Delivery.objects.filter(topic=held_topic).count() + Delivery.objects.filter(
        recipient=users["wang.wu"]).exclude(topic=held_topic).count()
    events_held = InboundEvent.objects.filter(data__document__id=document.external_id).count()
    assert kept and events_held
    RetentionPolicy.objects.create(kind="sent_cards", keep_days=30)
    RetentionPolicy.objects.create(kind="event_payloads", keep_days=30)
    retention.run(now=LATER)
    assert Delivery.objects.exclude(status="queued").count() == kept
    assert InboundEvent.objects.count() == events_held
    LegalHold.objects.update(released_at=timezone.now())
    retention.run(now=LATER)
    assert not Delivery.objects.exclude(status="queued").exists()


def test_platform_policy_overrides_the_general_one(demo):
    RetentionPolicy.objects.create(kind="sent_cards", keep_days=30)
    RetentionPolicy.objects.create(kind="sent_cards", platform="devinbox", keep_days=365)
    result = retention.run(now=LATER)
    assert result.destroyed == {"sent_cards": 0, "sent_cards@devinbox": 0}
    assert Delivery.objects.filter(platform="devinbox", status="sent").exists()


def test_platform_outage_keeps_the_row_for_the_next_run(demo, monkeypatch):
    from im.platforms.base import TransportError

    def down(address, message_id, *, recall_id=""):
        raise TransportError("platform down")

    monkeypatch.setattr(DevInboxAdapter, "delete_message", lambda self, *args, **kwargs: down(*args, **kwargs))
    RetentionPolicy.objects.create(kind="sent_cards", keep_days=30)
    assert retention.run(now=LATER).destroyed["sent_cards"] == 0
    assert MessageRef.objects.exists()


def test_audit_entries_destroyed_keep_the_chain_verifiable(db):
    for n in range(6):
        record("test.old", summary={"n": n})
    policy = RetentionPolicy.objects.create(kind="audit_entries", keep_days=30)
    later = timezone.now() + dt.timedelta(days=31)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timezone, "now", lambda: later)
        record("test.recent")
        result = retention.run(now=later, batch_size=4)
    assert result.destroyed["audit_entries"] == 6
    assert not AuditEntry.objects.filter(action="test.old").exists()
    checkpoint = AuditEntry.objects.filter(action="retention.destroyed").order_by("seq")
    assert [e.summary["count"] for e in checkpoint] == [4, 2]
    assert checkpoint.last().object_id == str(policy.pk)
    assert verify().ok, verify().problems
    call_command("verify_audit")


def test_deleting_the_oldest_entries_by_hand_is_detected(db):
    from django.db import connection

    for n in range(4):
        record("test", summary={"n": n})
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq <= 2")  # noqa: S608
    assert not verify().ok


def test_bot_exchanges_kind_is_registered_and_runs(db, django_user_model):
    from bot.models import BotExchange

    user = django_user_model.objects.create_user("ivy")
    BotExchange.objects.create(user=user, text="库存", intent="stock")
    RetentionPolicy.objects.create(kind="bot_exchanges", keep_days=1)
    assert retention.run(now=LATER).destroyed["bot_exchanges"] == 1


def test_registry_takes_new_kinds(db):
    seen = []
    retention.register_retention_kind(
        "test_kind", lambda cutoff, platform, others, holds: AuditEntry.objects.none(),
        lambda rows, policy: seen.append(rows) or 0,
    )
    try:
        RetentionPolicy.objects.create(kind="test_kind", keep_days=1)
        assert retention.run().destroyed["test_kind"] == 0
    finally:
        retention._KINDS.pop("test_kind")


def test_export_for_auditors(demo, tmp_path):
    import csv
    import json

    today = timezone.localdate().isoformat()
    out = tmp_path / "export.csv"
    call_command("export_audit", "--from", today, "--to", today, "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["kind"] for r in rows} == {"delivery"}
    assert len(rows) == Delivery.objects.count()
    out = tmp_path / "export.json"
    call_command("export_audit", "--from", today, "--to", today, "--format", "json", "-o", str(out))
    assert len(json.loads(out.read_text())["rows"]) == len(rows)


def test_admin_export_view_is_staff_only(demo, client, users, django_user_model):
    today = timezone.localdate().isoformat()
    url = f"/admin/trust/auditentry/export/?start={today}&end={today}&format=json"
    client.force_login(users["li.si"])
    assert client.get(url).status_code == 302  # to the admin login
    client.force_login(django_user_model.objects.create_superuser("auditor", password="x-123456789"))
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert client.get("/admin/trust/auditentry/").status_code == 200
    assert client.get("/admin/trust/auditentry/verify/").status_code == 302


def test_group_chat_records_respect_a_hold_on_the_group(db):
    from notifications.models import ChatGroup, GroupPost

    held = ChatGroup.objects.create(platform="devinbox", chat_id="7", name="war room", idempotency_key="g7")
    other = ChatGroup.objects.create(platform="devinbox", chat_id="8", name="sales", idempotency_key="g8")
    GroupPost.objects.create(group=held, idempotency_key="a", card={"title": "x"})
    GroupPost.objects.create(group=other, idempotency_key="b", card={"title": "y"})
    LegalHold.objects.create(scope="group", group_platform="devinbox", group_chat_id="7", reason="audit")
    RetentionPolicy.objects.create(kind="group_chats", keep_days=1)
    assert retention.run(now=LATER).destroyed["group_chats"] == 1
    assert list(GroupPost.objects.values_list("idempotency_key", flat=True)) == ["a"]


def test_every_app_registers_its_own_kinds():
    """Filled by the apps' ready(), not by trust: trust.retention imports none of them."""
    assert set(retention.kinds()) >= {"sent_cards", "event_payloads", "audit_entries", "bot_exchanges", "group_chats"}


def _card(title: str):
    from im.cards import Card

    return Card(topic="t.1", title=title, status="", status_label="", link="", link_label="", locale="en")


def test_dev_inbox_deletes_like_any_adapter(db, django_user_model):
    """The dev inbox implements delete_message: direct cards by id, group messages by their g<pk> id."""
    from im.platforms.base import TransportError
    from im.platforms.devinbox.models import DevInboxGroup, DevInboxGroupMessage

    adapter = DevInboxAdapter()
    user = django_user_model.objects.create_user("ivy")
    sent = adapter.send_card(str(user.pk), _card("x"), idempotency_key="k1")
    chat = adapter.create_group("room", [str(user.pk)], idempotency_key="g1")
    posted = adapter.send_card_to_chat(chat.chat_id, _card("y"), idempotency_key="k2")
    adapter.delete_message(str(user.pk), sent.message_id)
    adapter.delete_message(chat.chat_id, posted.message_id)
    assert not DevInboxMessage.objects.exists()
    assert not DevInboxGroupMessage.objects.exists() and DevInboxGroup.objects.exists()
    adapter.delete_message(str(user.pk), sent.message_id)  # already gone: fine
    with pytest.raises(TransportError) as gone:
        adapter.delete_message("x", "y")
    assert gone.value.permanent


def test_group_chat_records_are_recalled_from_the_dev_inbox_too(db, django_user_model):
    from im.platforms.devinbox.models import DevInboxGroupMessage
    from notifications.models import ChatGroup, GroupPost

    adapter = DevInboxAdapter()
    user = django_user_model.objects.create_user("ivy")
    chat = adapter.create_group("room", [str(user.pk)], idempotency_key="g1")
    posted = adapter.send_card_to_chat(chat.chat_id, _card("y"), idempotency_key="k2")
    group = ChatGroup.objects.create(platform="devinbox", chat_id=chat.chat_id, name="room", idempotency_key="g1")
    GroupPost.objects.create(group=group, idempotency_key="k2", card={"title": "y"}, message_id=posted.message_id)
    RetentionPolicy.objects.create(kind="group_chats", keep_days=1)
    assert retention.run(now=LATER).destroyed["group_chats"] == 1
    assert not DevInboxGroupMessage.objects.exists()
