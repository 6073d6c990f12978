"""The hash-chained audit trail: what is recorded, and that verify_audit catches tampering."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from trust.models import AppendOnly, AuditEntry, ChainHead
from trust.services import record, verify


def _sql(statement: str, *params: object) -> None:
    # Tampering as someone with database access would: straight SQL, past the model's guards.
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("%t", AuditEntry._meta.db_table), params)


@pytest.fixture
def chain(db):
    for n in range(5):
        record("test.event", actor_name="tester", object_type="x.Y", object_id=str(n), summary={"n": n})
    return list(AuditEntry.objects.order_by("seq"))


def test_entries_link_and_verify(chain):
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False))
    head = ChainHead.objects.get(pk=1)
    assert (head.seq, head.hash) == (5, chain[-1].hash)
    assert verify().ok
    call_command("verify_audit")


def test_summary_drops_secrets(db):
    entry = record("test", summary={"password": "x", "webhook_secret": "y", "email": "a@b.c", "ok": 1})
    assert entry.summary == {"ok": 1}


def test_model_refuses_edit_and_delete(chain):
    entry = chain[0]
    entry.action = "edited"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(action="edited")
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()


def test_edited_entry_is_detected(chain):
    _sql('UPDATE %t SET summary = %s WHERE seq = 3', '{"n": 99}')
    result = verify()
    assert not result.ok and any("#3" in p and "edited" in p for p in result.problems)
    with pytest.raises(CommandError):
        call_command("verify_audit")


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(chain):
    entry = AuditEntry.objects.get(seq=2)
    entry.actor_name = "someone else"
    _sql("UPDATE %t SET actor_name = %s, hash = %s WHERE seq = 2", entry.actor_name, entry.compute_hash())
    result = verify()
    assert any("#3" in p and "does not link" in p for p in result.problems)


def test_deleted_entry_is_detected(chain):
    _sql("DELETE FROM %t WHERE seq = 3")
    result = verify()
    assert any("#4" in p and "missing" in p for p in result.problems)
    with pytest.raises(CommandError):
        call_command("verify_audit")


def test_deleted_tail_is_detected(chain):
    _sql("DELETE FROM %t WHERE seq = 5")
    assert any("head" in p for p in verify().problems)


def test_reordered_entries_are_detected(chain):
    # Swap entries 2 and 4 (seq is unique, so through a free number).
    _sql("UPDATE %t SET seq = 100 WHERE seq = 2")
    _sql("UPDATE %t SET seq = 2 WHERE seq = 4")
    _sql("UPDATE %t SET seq = 4 WHERE seq = 100")
    result = verify()
    assert not result.ok
    assert any("edited" in p for p in result.problems)


def test_sign_in_and_failed_sign_in_are_recorded(client, db):
    get_user_model().objects.create_user("ann", password="right-horse-battery")
    client.post("/accounts/login/", {"username": "ann", "password": "wrong"})
    client.post("/accounts/login/", {"username": "ann", "password": "right-horse-battery"})
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", "actor_name"))
    assert ("auth.sign_in_failed", "") in actions
    assert ("auth.signed_in", "ann") in actions
    assert "wrong" not in str(list(AuditEntry.objects.values_list("summary", flat=True)))
    assert verify().ok


def test_loop_is_recorded_and_verifies(demo, users, client, committed):
    """The demo loop: deliveries sent, a card link used, a decision made, an admin change."""
    from approvals.models import ApprovalDocument
    from approvals.services import decide

    assert AuditEntry.objects.filter(action="delivery.sent").exists()
    document = ApprovalDocument.objects.filter(status="pending", assignments__user=users["li.si"]).first()
    with committed():
        decide(users["li.si"], document.pk, "approved", idempotency_key="trust-test-1", comment="fine")
    entry = AuditEntry.objects.get(action="approval.decided")
    assert entry.actor_name == "li.si" and entry.summary["document"] == document.external_id
    assert "fine" not in str(entry.summary)
    assert verify().ok


def test_access_change_is_chained_without_personal_data(db):
    from sso.models import AccessChange, ImIdentity

    user = get_user_model().objects.create_user("bob")
    ImIdentity.objects.create(user=user, platform="wecom", external_id="bob", email="bob@example.com")
    change = AccessChange.objects.get(model="sso.ImIdentity")
    entry = AuditEntry.objects.get(action="access.changed")
    assert entry.summary["access_change"] == change.pk
    assert "bob@example.com" not in str(entry.summary)
    assert len(entry.summary["content_sha256"]) == 64


def test_link_token_use_and_admin_change_are_recorded(db, client):
    from sso.tokens import make_link_token

    admin = get_user_model().objects.create_superuser("root", password="pw-root-123")
    user = get_user_model().objects.create_user("carl")
    # A link to one document (a list is not something a link grants: it asks for a sign-in, spending nothing).
    client.get(f"/s/{make_link_token(user, '/approvals/1/')}/")
    assert AuditEntry.objects.filter(action="link_token.used", actor_name="carl").exists()
    client.force_login(admin)
    client.post("/admin/auth/group/add/", {"name": "auditors"})
    entry = AuditEntry.objects.get(action="admin.changed")
    assert entry.object_type == "auth.Group" and entry.actor_name == "root"
    assert verify().ok


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_the_chain_linear(postgres):
    """Writers in parallel transactions (PostgreSQL row lock on the chain head): no fork, no gap."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def write(n: int) -> None:
        try:
            for i in range(10):
                record("test.concurrent", summary={"writer": n, "i": i})
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))
    assert AuditEntry.objects.filter(action="test.concurrent").count() == 40
    assert verify().ok, verify().problems


def test_delivery_reaching_dead_is_recorded_once(db, django_user_model):
    from im.models import Delivery

    user = django_user_model.objects.create_user("kay")
    delivery = Delivery.objects.create(dedupe_key="k", topic="approval.1", recipient=user, platform="devinbox")
    assert not AuditEntry.objects.filter(action__startswith="delivery.").exists()  # queued: not yet
    delivery.status, delivery.last_error = Delivery.Status.DEAD, "no account"
    delivery.save()
    Delivery.objects.get(pk=delivery.pk).save()  # a re-save without a change of status adds nothing
    entry = AuditEntry.objects.get(action="delivery.dead")
    assert entry.summary == {"topic": "approval.1", "platform": "devinbox", "recipient": user.pk, "attempts": 0}


def _rewrite_whole_chain(from_seq: int, summary: dict) -> None:
    """What an attacker with database access does: edit an entry and recompute every hash after it,
    then move the head, so that verify() alone finds nothing."""
    import json

    prev = AuditEntry.objects.get(seq=from_seq - 1).hash if from_seq > 1 else None
    for entry in AuditEntry.objects.filter(seq__gte=from_seq).order_by("seq"):
        if entry.seq == from_seq:
            entry.summary = summary
        if prev is not None:
            entry.prev_hash = prev
        entry.hash = entry.compute_hash()
        _sql("UPDATE %t SET summary = %s, prev_hash = %s, hash = %s WHERE seq = %s",
             json.dumps(entry.summary), entry.prev_hash, entry.hash, entry.seq)
        prev = entry.hash
    ChainHead.objects.filter(pk=1).update(hash=prev)


def test_anchors_catch_a_chain_rewritten_with_recomputed_hashes(chain, tmp_path, settings):
    anchors = tmp_path / "anchors.jsonl"
    settings.AUDIT_ANCHOR_FILE = str(anchors)
    call_command("anchor_audit")  # head #5
    record("test.event", actor_name="tester", object_type="x.Y", object_id="6")
    call_command("anchor_audit", file=str(anchors))  # head #6
    call_command("verify_audit", anchors=str(anchors))

    _rewrite_whole_chain(3, {"n": 99})
    assert verify().ok  # the rewrite is self-consistent: only the anchors can tell
    with pytest.raises(CommandError):
        call_command("verify_audit", anchors=str(anchors))
    from trust.services import check_anchors, read_anchors

    assert check_anchors(read_anchors(str(anchors))) == [
        "#5 differs from its anchor (the chain was rewritten up to here)",
        "#6 differs from its anchor (the chain was rewritten up to here)",
    ]


def test_a_broken_anchor_file_is_a_clear_error(chain, tmp_path):
    bad = tmp_path / "anchors.jsonl"
    bad.write_text('{"seq": 1}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="anchors.jsonl:1: not an anchor line"):
        call_command("verify_audit", anchors=str(bad))
