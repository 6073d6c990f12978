"""The ids cross into Celery tasks as message headers, and each task runs in its own scope.

Eager tasks (embedded default, tests) run in the caller's context and publish nothing: they keep
the caller's ids, and the scope gives them back untouched when the task ends.
"""

from __future__ import annotations

from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from portal.observability import context

HEADERS = {"request_id": "x_request_id", "event_id": "x_event_id"}
_saved: dict[str, dict[str, str]] = {}  # task id → ids before the task, restored after it


@before_task_publish.connect(dispatch_uid="observability-publish")
def _add_headers(headers: dict | None = None, **_: Any) -> None:
    if headers is None:
        return
    for name, value in context.current().items():
        if value:
            headers.setdefault(HEADERS[name], value)


@task_prerun.connect(dispatch_uid="observability-prerun")
def _enter_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    _saved[task_id or ""] = context.current()
    request = getattr(task, "request", None)
    carried = {}
    for name, header in HEADERS.items():
        # Protocol 2 puts custom headers on the request; eager apply(headers=…) keeps them in .headers.
        value = getattr(request, header, None) or (getattr(request, "headers", None) or {}).get(header)
        if value:
            carried[name] = value
    if carried or not getattr(request, "is_eager", False):
        # A worker's task starts clean, with only what the message carried.
        context.bind(**{name: carried.get(name, "") for name in HEADERS})


@task_postrun.connect(dispatch_uid="observability-postrun")
def _leave_task(task_id: str | None = None, **_: Any) -> None:
    saved = _saved.pop(task_id or "", None)
    if saved is not None:
        context.bind(**saved)
