"""The documents a handling batch has just written, kept for the cards the same worker sends right after
that batch commits (``erp.handling`` wraps both in its batch contexts; im sends at their end).

Reading them back, with their requester and approvers, was about a seventh of a worker's CPU for a
quiet system's batch of one event (``bench/worker_profile.py --batch 1``). A document is kept only once
its batch has committed (``on_commit``: a savepoint rolled back discards it, and its ids with it), only
if nothing else in the batch touched it after it was written (``touched``: a revision or a decision in
the same batch goes through the one-by-one handlers, which say so), and only until the batch's sends
are done; anything not kept is read as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction

from approvals.models import ApprovalDocument


class _Batch:
    def __init__(self) -> None:
        self.documents: dict[int, ApprovalDocument] = {}
        self.touched: set[int] = set()


_held: ContextVar[_Batch | None] = ContextVar("approvals_held_documents", default=None)


@contextmanager
def holding() -> Iterator[None]:
    """A handling batch and its sends (a batch context: ``erp.handling.register_batch_context``)."""
    token = _held.set(_Batch())
    try:
        yield
    finally:
        _held.reset(token)


def hold_after_commit(documents: Iterable[tuple[ApprovalDocument, list[Any]]]) -> None:
    """Keep each (document, its assignments as written) once the transaction commits, inside a batch."""
    if _held.get() is None:
        return
    written = list(documents)

    def keep() -> None:
        batch = _held.get()
        if batch is None:
            return
        for document, assignments in written:
            if document.pk in batch.touched:
                continue
            approvers = document.assignments.all()  # lazy: no query; filled as prefetch_related would
            approvers._result_cache = list(assignments)
            approvers._prefetch_done = True
            document._prefetched_objects_cache = {"assignments": approvers}
            batch.documents[document.pk] = document

    transaction.on_commit(keep)


def touched(pk: int) -> None:
    """A handler changes this document (or may): not to be kept as first written."""
    batch = _held.get()
    if batch is not None:
        batch.touched.add(pk)
        batch.documents.pop(pk, None)


def on_document_saved(sender: type, instance: ApprovalDocument, **_kwargs: Any) -> None:
    """Any save of a document in the batch (``post_save``): its kept copy would be out of date."""
    touched(instance.pk)


def held(pks: Iterable[int]) -> dict[int, ApprovalDocument]:
    """{pk: document} of those of ``pks`` this batch wrote and committed."""
    batch = _held.get()
    if batch is None or not batch.documents:
        return {}
    return {pk: batch.documents[pk] for pk in pks if pk in batch.documents}
