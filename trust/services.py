"""Writing and checking the audit chain.

``record()`` appends one entry, ``record_many()`` a batch, under a row lock on ``ChainHead``
(``SELECT … FOR UPDATE``: a row lock on PostgreSQL; SQLite serialises writers anyway), inside the
caller's transaction, so an audit entry commits or rolls back together with what it records and the
chain stays linear. A batch takes the lock once (the sender records a whole batch of sent cards so);
on PostgreSQL the entries and the head's move are then one statement.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from portal.bulk import values_sql
from trust.models import GENESIS_HASH, AuditEntry, ChainHead

# Keys never copied into a summary, whatever the caller passes (secrets and personal data).
SECRET_KEYS = ("password", "secret", "token", "key", "jti", "email", "mobile", "credential", "signature")


def _clean(value: Any) -> Any:
    """JSON-safe, with secret-looking keys dropped; what is stored is exactly what is hashed."""
    if isinstance(value, dict):
        return {
            str(k): _clean(v) for k, v in value.items() if not any(word in str(k).lower() for word in SECRET_KEYS)
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def _locked_head() -> tuple[int, str]:
    """The head's (seq, hash), its row locked until the caller's transaction ends: one raw statement
    (the ORM's query building cost more CPU than the database's work)."""
    table = connection.ops.quote_name(ChainHead._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""  # SQLite: writers serialised
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash FROM {table} WHERE id = 1{lock}")  # noqa: S608 - the model's name
        found = cursor.fetchone()
    if found is None:
        ChainHead.objects.get_or_create(pk=1)
        return _locked_head()
    return int(found[0]), found[1]


def _append(entries: list[AuditEntry], seq: int, head_hash: str) -> None:
    """Insert ``entries`` and move the head to (``seq``, ``head_hash``); on PostgreSQL one statement
    (``WITH … UPDATE`` the head ``INSERT … RETURNING`` the ids), elsewhere ``bulk_create`` and an update."""
    if connection.vendor != "postgresql":
        AuditEntry.objects.bulk_create(entries)
        ChainHead.objects.filter(pk=1).update(seq=seq, hash=head_hash)
        return
    quote = connection.ops.quote_name
    fields = [f.name for f in AuditEntry._meta.concrete_fields if not f.primary_key]
    names = ", ".join(quote(AuditEntry._meta.get_field(name).column) for name in fields)
    values, params = values_sql(AuditEntry, entries, fields, connection)
    # Only quoted names from the models' metadata are formatted in; every value is a parameter.
    sql = (f"WITH head AS (UPDATE {quote(ChainHead._meta.db_table)} SET seq = %s, hash = %s WHERE id = 1) "  # noqa: S608
           f"INSERT INTO {quote(AuditEntry._meta.db_table)} ({names}) {values} RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [seq, head_hash, *params])
        ids = [row[0] for row in cursor.fetchall()]
    for entry, pk in zip(entries, ids, strict=True):  # as bulk_create leaves them: saved, with their ids
        entry.pk = pk
        entry._state.adding, entry._state.db = False, connection.alias


@dataclass(frozen=True)
class Fact:
    """One thing to record; ``record_many`` appends a batch of them under one lock of the head."""

    action: str
    actor: Any = None
    actor_name: str | None = None
    obj: Any = None
    object_type: str = ""
    object_id: str = ""
    summary: dict | None = None


def record(
    action: str,
    *,
    actor: Any = None,
    actor_name: str | None = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    summary: dict | None = None,
) -> AuditEntry:
    """Append one entry to the chain (in the caller's transaction, if any)."""
    fact = Fact(action, actor, actor_name, obj, object_type, object_id, summary)
    return record_many([fact])[0]


def record_many(facts: list[Fact]) -> list[AuditEntry]:
    """Append entries for ``facts`` in order, under ONE lock of the head and with one insert, in the
    caller's transaction if any. The chain is the same as if each were recorded alone (each entry
    links to the one before it), so ``verify`` proves the same things; a batch of sent cards costs
    one lock instead of one per card."""
    if not facts:
        return []
    now = timezone.now()
    entries = []
    # No savepoint inside the caller's transaction: an append that fails fails the caller's transaction,
    # which is what "the entry commits or rolls back with what it records" asks.
    with transaction.atomic(savepoint=False):
        seq, prev_hash = _locked_head()
        for fact in facts:
            object_type, object_id, actor = fact.object_type, fact.object_id, fact.actor
            if fact.obj is not None:
                object_type = object_type or fact.obj._meta.label
                object_id = object_id or str(fact.obj.pk)
            if actor is not None and not getattr(actor, "is_authenticated", False):
                actor = None
            name = fact.actor_name if fact.actor_name is not None else (
                actor.get_username() if actor is not None else "system")
            seq += 1
            entry = AuditEntry(
                seq=seq,
                at=now,
                actor_pk=actor.pk if actor is not None else None,
                actor_name=name[:150],
                action=fact.action[:50],
                object_type=object_type[:100],
                object_id=str(object_id)[:100],
                summary=_clean(fact.summary or {}),
                prev_hash=prev_hash,
            )
            entry.hash = entry.compute_hash()
            prev_hash = entry.hash
            entries.append(entry)
        _append(entries, seq, prev_hash)
    return entries


@dataclass
class Verification:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries() -> Iterator[AuditEntry]:
    return AuditEntry.objects.order_by("seq").iterator(chunk_size=2000)


def verify() -> Verification:
    """Walk the chain from its base: every hash recomputes, every entry links to the one before, seqs
    have no gap, and the head names the last entry. An edited, deleted, inserted or reordered entry
    (or a truncated tail) shows up as a problem."""
    result = Verification()
    head = ChainHead.objects.filter(pk=1).first() or ChainHead(seq=0, hash=GENESIS_HASH)
    expected_seq, expected_prev = head.base_seq + 1, head.base_hash
    last = None
    for entry in _entries():
        result.checked += 1
        if entry.seq != expected_seq:
            result.problems.append(f"#{entry.seq}: expected #{expected_seq} (an entry is missing or was moved)")
        if entry.prev_hash != expected_prev:
            result.problems.append(f"#{entry.seq}: does not link to the entry before it")
        if entry.compute_hash() != entry.hash:
            result.problems.append(f"#{entry.seq}: content does not match its hash (edited)")
        expected_seq, expected_prev, last = entry.seq + 1, entry.hash, entry
    if last is None:
        if head.seq != head.base_seq:
            result.problems.append(f"the head names #{head.seq} but the chain is empty (entries deleted)")
    elif (last.seq, last.hash) != (head.seq, head.hash):
        result.problems.append(f"the head names #{head.seq} but the chain ends at #{last.seq} (entries deleted)")
    if head.base_seq and not _base_vouched_for(head):
        result.problems.append(f"the chain starts after #{head.base_seq} but no retention run says so")
    return result


def _base_vouched_for(head: ChainHead) -> bool:
    """A chain that starts after #N is legitimate only if a retention run's entry (still in the
    chain, so itself verified) names #N and its hash as the last entry it destroyed."""
    return AuditEntry.objects.filter(
        action="retention.destroyed",
        summary__kind="audit_entries",
        summary__through_seq=head.base_seq,
        summary__through_hash=head.base_hash,
    ).exists()


# --- anchoring the chain outside the database ------------------------------------------------------
# Someone who can write to the database can rewrite the whole chain and recompute every hash; verify()
# alone cannot tell. An anchor is the head's (seq, hash) written somewhere they cannot reach (a
# write-once file, the central log, a ticket). check_anchors() then checks the chain still holds each.


def anchor_now() -> dict[str, Any]:
    """The current head as an anchor record: {"seq", "hash", "at"}."""
    head = ChainHead.objects.filter(pk=1).first() or ChainHead(seq=0, hash=GENESIS_HASH)
    return {"seq": int(head.seq), "hash": head.hash, "at": timezone.now().isoformat(timespec="seconds")}


def read_anchors(path: str) -> list[dict[str, Any]]:
    """Anchors appended to ``path`` by ``anchor_audit``, one JSON object per line."""
    anchors = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    item = json.loads(line)
                    anchors.append({"seq": int(item["seq"]), "hash": str(item["hash"])})
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: not an anchor line ({exc})") from exc
    return anchors


def check_anchors(anchors: list[dict[str, Any]]) -> list[str]:
    """Problems where the chain no longer holds an anchored (seq, hash). Entries destroyed by retention
    (at or before the chain's base) are vouched for by the retention entry instead."""
    head = ChainHead.objects.filter(pk=1).first() or ChainHead(seq=0, hash=GENESIS_HASH)
    wanted = {a["seq"]: a["hash"] for a in anchors if a["seq"] > head.base_seq}
    found = dict(AuditEntry.objects.filter(seq__in=list(wanted)).values_list("seq", "hash"))
    problems = []
    for seq, anchored in sorted(wanted.items()):
        if seq not in found:
            problems.append(f"anchored #{seq} is gone from the chain")
        elif found[seq] != anchored:
            problems.append(f"#{seq} differs from its anchor (the chain was rewritten up to here)")
    return problems
