"""The production shape on one machine (``portal.serve``, what ``make serve`` runs): two Daphne processes
sharing one port, two Celery workers and beat, on PostgreSQL and Redis, against the test database.

One test, end to end: signed events posted to the one port are answered by both Daphne processes,
their cards are sent by both workers, a live push crosses from the process that took the ERP event
to websockets held by the other one, and everything stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import uuid

import httpx
import pytest
import redis

from erp.signing import make_cloudevent, sign
from im.models import Delivery
from portal import serve
from tests.conftest import approval_requested

from .live_server import collect_static, database_url
from .worker import forget_queue, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

EVENTS = 12  # enough for the kernel to hand connections to both Daphne processes and tasks to both workers
MAX_EVENTS = 60


@pytest.fixture
def served(transactional_db, postgres, demo, redis_url, settings, tmp_path):
    """``portal.serve.start(2 Daphne, 2 workers, beat)`` on a free port; stopped (and checked) by the test."""
    tag = f"test-serve-{uuid.uuid4().hex[:12]}"
    static_root = tmp_path / "static"
    collect_static(static_root)  # what `make serve` does first: whitenoise serves the compressed copies
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        # This test's own queue, channel and cache prefixes: nothing of other runs reaches it.
        "CELERY_QUEUE": tag,
        "CHANNELS_PREFIX": tag,
        "CACHE_PREFIX": tag,
        "SECRET_KEY": settings.SECRET_KEY,  # embed tokens are signed here and checked there
        "STATIC_ROOT": str(static_root),
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "IM_ADAPTERS": "devinbox",
        "LIVE_COALESCE_SECONDS": "0.05",
        "LOG_LEVEL": "INFO",  # the readiness lines and each worker's "Task … succeeded"
    }
    handle = serve.start(processes=2, workers=2, env=env, concurrency=1, log_dir=tmp_path)
    client = redis.Redis.from_url(redis_url)
    try:
        handle.wait_ready(timeout=45)
        yield handle
    finally:
        handle.stop(grace=5)  # a no-op when the test stopped it already
        forget_queue(client, tag)
        client.close()


def post_event(handle: serve.Served, connector, event_type: str, data: dict) -> httpx.Response:
    """One signed event on a new connection (so the kernel may pick either Daphne)."""
    body = json.dumps(make_cloudevent(event_type, "urn:erp:test", data), ensure_ascii=False).encode()
    response = httpx.post(f"{handle.url}/api/erp/demo/events", content=body,
                          headers=sign(connector.webhook_secret, body), timeout=20)
    assert response.status_code == 202, response.text
    return response


def tasks_run_by(worker: serve.Child) -> int:
    """The event-handling and card-sending tasks it ran (a handling worker sends its batch's cards itself)."""
    return len(re.findall(r"Task (?:im\.tasks\.send_delivery|erp\.tasks\.handle_events)\[[^\]]+\] succeeded",
                          worker.log(chars=10_000_000)))


def events_handled_by(worker: serve.Child) -> int:
    """The events its handling tasks claimed (each task logs how many it handled)."""
    return sum(int(count) for count in re.findall(
        r"Task erp\.tasks\.handle_events\[[^\]]+\] succeeded in [\d.e-]+s: (\d+)", worker.log(chars=10_000_000)))


async def open_sockets(handle: serve.Served, token: str, topic: str, count: int) -> list:
    import websockets

    sockets = []
    for _ in range(count):
        ws = await websockets.connect(f"ws://127.0.0.1:{handle.port}/ws/live/?e={token}",
                                      origin=f"http://127.0.0.1:{handle.port}", open_timeout=20)
        await ws.send(json.dumps({"subscribe": topic}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 20)) == {"subscribed": topic}
        sockets.append(ws)
    return sockets


async def pushes(sockets: list, topic: str) -> list[dict]:
    async def first_push(ws) -> dict:
        while True:
            message = json.loads(await ws.recv())
            if message.get("topic") == topic and "version" in message:
                return message

    return await asyncio.wait_for(asyncio.gather(*(first_push(ws) for ws in sockets)), 20)


def test_two_daphne_processes_and_two_workers_share_the_work(served, connector, users, settings):
    from erp.connectors.demo import emitter
    from erp.connectors.demo.models import Stock
    from im.platforms.devinbox.models import DevInboxMessage
    from widgets.embed import make_embed_token

    handle = served
    assert len(handle.pids["daphne"]) == 2 and len(handle.pids["worker"]) == 2 and len(handle.pids["beat"]) == 1

    # 1. Signed events through the one port: both Daphne processes answer (Server: daphne-<i>).
    answered_by: list[str] = []
    documents = []
    while len(documents) < EVENTS or len(set(answered_by)) < 2:
        assert len(documents) < MAX_EVENTS, f"only {set(answered_by)} answered {len(documents)} events"
        doc_id = f"PR-SERVE-{len(documents):04d}"
        response = post_event(handle, connector, "erp.approval.requested", approval_requested(doc_id))
        answered_by.append(response.headers["server"])
        documents.append(doc_id)
    assert set(answered_by) == {"daphne-0", "daphne-1"}

    # 2. Every card is sent by a worker (no eager tasks in the servers), to the dev inbox.
    topics = [f"approval.{pk}" for pk in _document_pks(documents)]
    deliveries = Delivery.objects.filter(recipient=users["li.si"], topic__in=topics)

    def all_sent() -> bool:
        return deliveries.filter(status=Delivery.Status.SENT).count() == len(documents)

    wait_for(all_sent, 30, "every card to be sent", interval=0.2, details=handle.logs)
    assert DevInboxMessage.objects.filter(idempotency_key__in=deliveries.values("dedupe_key")).count() == len(documents)
    # Both workers took some: each logs the tasks it ran.
    wait_for(lambda: all(tasks_run_by(w) for w in handle.of("worker")), 10, "both workers to have run a task",
             details=handle.logs)
    # Every event was handled by a worker's task (one task may take several: erp/doorbell.py).
    assert sum(events_handled_by(w) for w in handle.of("worker")) == len(documents)

    # 3. A live push crosses processes: websockets on both Daphne processes, the ERP event on one of them.
    zhao = users["zhao.liu"]
    token = make_embed_token(zhao, "/w/stock/SKU-123/")
    topic = "item.SKU-123"
    stock = Stock.objects.select_related("item", "warehouse").get(item__sku="SKU-123", warehouse__code="SH")

    async def live() -> tuple[set[str], str, list[dict]]:
        sockets = await open_sockets(handle, token, topic, 4)
        while len({ws.response.headers["server"] for ws in sockets}) < 2:
            assert len(sockets) < 40, "every websocket landed on one Daphne process"
            sockets += await open_sockets(handle, token, topic, 1)
        holders = {ws.response.headers["server"] for ws in sockets}
        waiting = asyncio.ensure_future(pushes(sockets, topic))
        await asyncio.sleep(0.1)

        def post_stock_change() -> str:
            stock.quantity += 7
            data = emitter.stock_changed_data(stock)
            return post_event(handle, connector, emitter.STOCK_CHANGED, data).headers["server"]

        origin = await asyncio.get_running_loop().run_in_executor(None, post_stock_change)
        received = await waiting
        for ws in sockets:
            await ws.close()
        return holders, origin, received

    holders, origin, received = asyncio.run(live())
    assert holders == {"daphne-0", "daphne-1"}
    assert origin in holders
    # Every socket, including those on the process that did not take the event, got the push.
    assert len(received) >= 2 and all(message["topic"] == topic for message in received)

    # 4. Beat is up, nothing died along the way, and SIGTERM stops every child cleanly.
    assert "beat: Starting" in handle.of("beat")[0].log(chars=1_000_000)
    assert handle.crashed == []
    codes = handle.stop()
    assert codes == {"daphne-0": 0, "daphne-1": 0, "worker-0": 0, "worker-1": 0, "beat": 0}, handle.logs()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", handle.port), timeout=1):
        pass


def _document_pks(external_ids: list[str]) -> list[int]:
    from approvals.models import ApprovalDocument

    mirrored = ApprovalDocument.objects.filter(external_id__in=external_ids)
    # The intake stores the events; the workers mirror the documents (docs/architecture.md, "The hot path").
    wait_for(lambda: mirrored.count() == len(external_ids), 30, "the documents to be mirrored", interval=0.2)
    pks = list(mirrored.values_list("pk", flat=True))
    assert len(pks) == len(external_ids)
    return pks
