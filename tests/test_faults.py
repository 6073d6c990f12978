"""Faults under load, end to end, on loopback: a real Celery worker (tests/worker.py), a private
Redis, a TCP proxy in front of Postgres, and an HTTP sink playing the IM platform behind the
generic ``webhook`` adapter (helpers in tests/faults.py).

Each test plays an ERP that announces documents through the signed intake (the Django test client
in this process; an answer other than 202 is retried with the same ``webhook-id``, as an ERP does)
while people decide some of them (``approvals.services.decide``), injects one fault, lets the
system recover, and counts.

Definitions (docs/architecture.md quotes them):

- **expected**: for every event answered 202, one delivery key per named approver
  (``demo:<cloudevent id>:<user pk>:webhook``, the ``Delivery.dedupe_key``). The webhook adapter
  sends it as ``data.idempotency_key`` and hashes it into ``webhook-id``, so a retried send carries
  the same key.
- **sent**: expected keys whose ``Delivery`` row is ``sent`` in the portal's database.
- **delivered**: distinct expected keys the sink acknowledged with 2xx.
- **duplicated** (must be 0): distinct keys that arrived again *after* the sink had acknowledged
  them with 2xx. A retry after a 429, a 500, a timeout (the sink answered nothing) or a killed
  sender is not a duplicate: that send was never acknowledged; it is counted as **redelivered**.
  A receiver that drops repeated ``webhook-id``\\ s would show a duplicated key once, but it is
  still counted here: the portal is meant not to re-send what the platform acknowledged.
- **lost** (must be 0): expected keys the sink never acknowledged.
- **written back** / **erp applied**: decisions whose writeback is ``done`` / documents for which
  the ERP holds a decision. **wb duplicated** (must be 0): decisions the ERP holds beyond one per
  document; **wb lost** (must be 0): decided documents the ERP holds no decision for.
- **nothing stuck**: after recovery every expected ``Delivery`` is ``sent``, every ``Decision``'s
  writeback is ``done`` and no sent card is still waiting for its edit.

Time is scaled: retries start at ``RETRY_BASE_SECONDS=0.2`` (production 2 s), and the beat's safety
net (``requeue_stale_work``) runs every 2 s with ``STALE_AFTER`` = 6 s (production: every 60 s,
60 s). So a fault of a few seconds here stands for about a minute in production, with the same
number of retries (``DELIVERY_MAX_ATTEMPTS``/``WRITEBACK_MAX_ATTEMPTS`` = 8). The counts table is
printed (``pytest -s``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from approvals import services as approvals
from approvals.models import ApprovalDocument, Decision
from erp.connectors.demo.emitter import APPROVAL_REQUESTED, SOURCE, approval_requested_data
from erp.connectors.demo.models import DocumentState, FaultPlan, Project, PurchaseRequisition
from erp.models import Connector, InboundEvent
from erp.signing import make_cloudevent, sign
from im.models import Delivery, MessageRef
from portal.celery import app as celery_app

from .conftest import service_missing
from .faults import Ledger, RedisServer, SafetyNet, Sink, TcpProxy, table
from .worker import Worker, publish_to, start_worker, wait_for, worker_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fault-tests-webhook-secret-32by").decode()
CLIENT_TIMEOUT = 1.0  # IM_WEBHOOK_TIMEOUT of the worker; the sink's hang is longer
APPROVERS = ["li.si", "wang.wu"]  # two recipients per event
STALE_AFTER = dt.timedelta(seconds=6)  # the safety net's STALE_AFTER, scaled from 60 s
SAFETY_NET_SECONDS = 2.0  # how often it runs (beat: every 60 s)
SETTLE_TIMEOUT = 45.0
WORKER_CONCURRENCY = 2  # two pool processes: sends overlap, as with several workers
RESULTS: list[dict[str, Any]] = []  # every fault's counts, printed again at the end of the module


@dataclass
class Rig:
    """What the whole module shares: started once, since a worker takes seconds to start."""

    sink: Sink
    redis: RedisServer
    proxy: TcpProxy
    env: dict[str, str]
    log_dir: Path
    workers: list[Worker] = field(default_factory=list)
    ready: set[str] = field(default_factory=set)

    @property
    def worker(self) -> Worker:
        return self.workers[-1]

    def start_worker(self) -> Worker:
        worker = start_worker(self.env, self.log_dir, concurrency=WORKER_CONCURRENCY)
        self.workers.append(worker)
        return worker

    def wait_ready(self) -> Worker:
        # Once: Worker.wait_ready looks for "ready." in the log's last megabyte, long gone later.
        if self.worker.name not in self.ready:
            self.worker.wait_ready()
            self.ready.add(self.worker.name)
        return self.worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log(3000)}" for w in self.workers[-2:])


@pytest.fixture(scope="module")
def rig(django_db_setup, tmp_path_factory) -> Iterator[Rig]:
    db = dict(django_settings.DATABASES["default"])
    if "postgresql" not in db["ENGINE"]:
        service_missing("PostgreSQL (DATABASE_URL=postgres://…)")
    if shutil.which("redis-server") is None:
        service_missing("redis-server (a private one is started for these tests)")
    log_dir = tmp_path_factory.mktemp("faults")
    host, port = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)
    upstream: tuple[str, int] | str = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
    redis_server = RedisServer(log_dir)
    redis_server.start()
    sink = Sink(WEBHOOK_SECRET, retry_after=1.0, hang_seconds=CLIENT_TIMEOUT * 2).start()
    proxy = TcpProxy(upstream).start()
    env = worker_env(
        queue=f"test-faults-{uuid.uuid4().hex[:12]}",
        redis_url=redis_server.url,
        # The worker reaches Postgres only through the proxy, so the test can cut it.
        db={**db, "HOST": "127.0.0.1", "PORT": str(proxy.port)},
        IM_ADAPTERS="webhook",
        IM_WEBHOOK_URL=sink.url,
        IM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        IM_WEBHOOK_TIMEOUT=str(CLIENT_TIMEOUT),
        CHANNELS_PREFIX="faults",
        LOG_LEVEL="WARNING",
    )
    rig = Rig(sink=sink, redis=redis_server, proxy=proxy, env=env, log_dir=log_dir)
    rig.start_worker()  # starts up while the first test sets up the demo data
    try:
        yield rig
    finally:
        for worker in rig.workers:
            worker.kill()
        proxy.stop()
        sink.stop()
        redis_server.kill()
        if RESULTS:
            print("\n\nFault suite: counts per fault (definitions in tests/test_faults.py)\n" + table(RESULTS))


@dataclass
class Scenario:
    """One test's ERP, people and counters."""

    rig: Rig
    ledger: Ledger
    users: dict[str, Any]
    safety_net: SafetyNet
    secret: str
    project: Project | None

    # --- the ERP ---
    def documents(self, count: int) -> list[PurchaseRequisition]:
        """``count`` requisitions waiting in the demo ERP for li.si and wang.wu."""
        tag = self.ledger.fault[:8]
        documents = [
            PurchaseRequisition(
                number=f"PR-{tag}-{i:04d}", title=f"故障测试 {tag} #{i}", project=self.project,
                requester="zhang.san", approvers=list(APPROVERS), amount=Decimal("1000.00"), currency="CNY",
                state=DocumentState.WAITING,
            )
            for i in range(count)
        ]
        return PurchaseRequisition.objects.bulk_create(documents)

    def announce(self, client: Client, document: PurchaseRequisition, deadline: float) -> None:
        """erp.approval.requested through the HTTP intake until it answers 202 (same webhook-id)."""
        envelope = make_cloudevent(APPROVAL_REQUESTED, SOURCE, approval_requested_data(document))
        body = json.dumps(envelope, ensure_ascii=False).encode()
        webhook_id = f"msg_{uuid.uuid4().hex}"
        while True:
            headers = sign(self.secret, body, webhook_id=webhook_id)
            response = client.post(
                "/api/erp/demo/events", data=body, content_type="application/cloudevents+json",
                headers={k: v for k, v in headers.items() if k != "content-type"},
            )
            if response.status_code == 202:
                break
            self.ledger.intake_refusals += 1
            self.ledger.errors.add(f"intake: {response.status_code} {response.content[:120]!r}")
            assert time.monotonic() < deadline, f"the intake kept answering {response.status_code}"
            time.sleep(0.2)
        self.ledger.events_accepted += 1
        for login in document.approvers:
            self.ledger.expected.add(f"demo:{envelope['id']}:{self.users[login].pk}:webhook")

    def decide(self, number: str, deadline: float) -> None:
        """li.si approves; a failed call is retried with the same idempotency key, as a page does."""
        key = f"fault-{self.ledger.fault}-{number}"
        # The intake stores the event and a worker mirrors the document (docs/architecture.md, "The hot
        # path"): nobody can decide before that, as nobody has the card before it.
        wait_for(lambda: ApprovalDocument.objects.filter(external_id=number).exists(),
                 max(1.0, deadline - time.monotonic()), f"{number} to be mirrored")
        document = ApprovalDocument.objects.get(external_id=number)
        while True:
            try:
                approvals.decide(self.users["li.si"], document.pk, "approved", comment="故障测试", idempotency_key=key)
                break
            except approvals.DecisionError:
                raise
            except Exception as exc:
                self.ledger.decide_errors += 1
                self.ledger.errors.add(f"decide: {type(exc).__name__}: {str(exc)[:120]}")
                assert time.monotonic() < deadline, "decide() kept failing"
                time.sleep(0.2)
        self.ledger.decisions[number] = key

    def load(self, events: int, decisions: int, *, pause: float = 0.0, lag: int = 3) -> threading.Thread:
        """In a thread: announce ``events`` documents, and decide the first ``decisions`` of them
        ``lag`` announcements later. ``join_load`` re-raises what failed in it."""
        documents = self.documents(events)
        errors: list[BaseException] = []

        def run() -> None:
            client = Client(raise_request_exception=False)
            deadline = time.monotonic() + 60
            try:
                for i, document in enumerate(documents):
                    self.announce(client, document, deadline)
                    if 0 <= i - lag < decisions:
                        self.decide(documents[i - lag].number, deadline)
                    time.sleep(pause)
                for document in documents[max(0, len(documents) - lag):decisions]:
                    self.decide(document.number, deadline)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)
            finally:
                self.ledger.load_seconds = round(time.monotonic() - self.ledger.started, 1)
                connection.close()

        thread = threading.Thread(target=run, name="erp-load", daemon=True)
        thread.errors = errors  # type: ignore[attr-defined]
        thread.start()
        return thread

    def join_load(self, thread: threading.Thread) -> None:
        thread.join(timeout=90)
        assert not thread.is_alive(), "the load did not finish"
        errors = thread.errors  # type: ignore[attr-defined]
        if errors:
            raise errors[0]

    # --- recovery and counts ---
    def in_flight(self) -> dict[str, int]:
        return {
            "events not handled": InboundEvent.objects.filter(status=InboundEvent.Status.RECEIVED).count(),
            "queued deliveries": Delivery.objects.filter(
                dedupe_key__in=self.ledger.expected, status=Delivery.Status.QUEUED
            ).count(),
            "pending writebacks": Decision.objects.filter(writeback_status=Decision.Writeback.PENDING).count(),
            "card edits waiting": MessageRef.objects.filter(needs_update=True).count(),
        }

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> dict[str, Any]:
        """Wait until nothing is queued, pending or waiting; then count and print."""
        wait_for(lambda: not any(self.in_flight().values()), timeout, "everything to settle",
                 interval=0.2, details=lambda: f"{self.in_flight()}\n{self.ledger.tally(self.rig.sink)}\n"
                                               f"safety net: {dict(self.safety_net.requeued)} requeued, "
                                               f"{self.safety_net.errors} failed ticks\n{self.rig.logs()}")
        time.sleep(0.5)  # a late duplicate would arrive now
        counts = self.ledger.tally(self.rig.sink)
        RESULTS.append(counts)
        print(f"\n{table([counts])}\n  intake refusals retried: {self.ledger.intake_refusals}, decide() errors "
              f"retried: {self.ledger.decide_errors}, safety net: {dict(self.safety_net.requeued)} requeued, "
              f"{self.safety_net.errors} failed ticks; load took {self.ledger.load_seconds} s"
              + "".join(f"\n  {e}" for e in sorted(self.ledger.errors)))
        return counts

    def assert_exactly_once(self, counts: dict[str, Any]) -> None:
        assert counts["events 202"] > 0 and counts["expected"] == 2 * counts["events 202"]
        assert counts["duplicated"] == 0, counts
        assert counts["lost"] == 0, counts
        assert counts["unexpected"] == 0, counts
        assert counts["delivered"] == counts["sent"] == counts["expected"], counts
        assert counts["wb duplicated"] == 0, counts
        assert counts["wb lost"] == 0, counts
        assert counts["written back"] == counts["erp applied"] == counts["decisions"], counts
        # Nothing stuck: every row in a final state, none dead or failed.
        statuses = set(Delivery.objects.filter(dedupe_key__in=self.ledger.expected).values_list("status", flat=True))
        assert statuses == {Delivery.Status.SENT}, statuses
        writebacks = set(Decision.objects.values_list("writeback_status", flat=True))
        assert writebacks <= {Decision.Writeback.DONE}, writebacks
        assert not MessageRef.objects.filter(needs_update=True).exists()
        assert self.rig.sink.bad_signatures == 0


@pytest.fixture
def scenario(request, rig, demo, users, settings, monkeypatch) -> Iterator[Scenario]:
    """Tasks go for real to the private Redis; the worker is up; the safety net ticks."""
    from portal import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = rig.env["CELERY_QUEUE"]
    settings.IM_ADAPTERS = ["webhook"]
    settings.RETRY_BASE_SECONDS = float(rig.env["RETRY_BASE_SECONDS"])
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [rig.redis.url], "prefix": "faults"}}}
    monkeypatch.setattr(tasks, "STALE_AFTER", STALE_AFTER)
    rig.sink.reset()
    if rig.worker.process.poll() is not None:
        rig.start_worker()
    rig.wait_ready()
    fault = request.node.name.removeprefix("test_")
    safety_net = SafetyNet(interval=SAFETY_NET_SECONDS)
    with publish_to(celery_app, broker_url=rig.redis.url, queue=rig.env["CELERY_QUEUE"]):
        safety_net.start()
        try:
            yield Scenario(rig=rig, ledger=Ledger(fault=fault), users=users, safety_net=safety_net,
                           secret=Connector.objects.get(slug="demo").webhook_secret,
                           project=Project.objects.filter(code="PRJ-A").first())
        finally:
            safety_net.stop()
            # Whatever a failed test left behind, the next one starts healthy.
            rig.sink.release()
            rig.sink.phase = "ok"
            rig.proxy.restore()
            if rig.redis.process is None or rig.redis.process.poll() is not None:
                rig.redis.start()


def arrivals_of(sink: Sink, key: str) -> list[Any]:
    return [a for a in sink.sends() if a.key == key]


# --- the faults -------------------------------------------------------------------------------------


def test_worker_killed_mid_send(scenario: Scenario) -> None:
    """SIGKILL the worker (its whole process group) while the sink holds one of its sends; a new
    worker starts. The held send was never acknowledged, so its redelivery is no duplicate."""
    rig = scenario.rig
    rig.sink.hold_next_send()
    load = scenario.load(events=30, decisions=10)
    assert rig.sink.held.wait(20), "no send reached the sink"
    held = rig.sink.sends()  # nothing recorded yet: a held request is recorded when it ends
    rig.worker.kill()
    rig.sink.release()
    rig.start_worker()
    rig.wait_ready()
    scenario.join_load(load)

    counts = scenario.settle()
    scenario.assert_exactly_once(counts)
    killed = [a for a in rig.sink.sends() if a.answer is None]
    assert len(killed) == 1 and killed[0] not in held
    # The send the worker died in was made again, by the new worker, and acknowledged once.
    assert [a.answer for a in arrivals_of(rig.sink, killed[0].key)] == [None, 200]
    assert counts["redelivered"] >= 1


def test_redis_restarted_under_load(scenario: Scenario) -> None:
    """Kill the private Redis (broker, channel layer; no persistence, so every queued and unacked
    task message is gone) mid-load and start it again on the same port two seconds later."""
    rig = scenario.rig
    load = scenario.load(events=40, decisions=10, pause=0.02)
    wait_for(lambda: len(rig.sink.acked_keys()) >= 20, 30, "the first cards", details=rig.logs)
    rig.redis.kill()
    time.sleep(2.0)
    rig.redis.start()
    scenario.join_load(load)

    counts = scenario.settle()
    scenario.assert_exactly_once(counts)
    # The messages lost with Redis were found again by the safety net (or the worker's own retries).
    assert sum(scenario.safety_net.requeued.values()) > 0


def test_im_sink_429_then_500_then_timeouts(scenario: Scenario) -> None:
    """The platform answers 429 with Retry-After: 1, then 500s, then hangs longer than the client's
    timeout, then recovers; each phase lasts under two seconds (a minute at production retry pacing)."""
    rig = scenario.rig
    rig.sink.phase = "429"
    load = scenario.load(events=30, decisions=10, pause=0.02)
    for phase, seconds in (("429", 1.5), ("500", 1.5), ("hang", 2.5)):
        rig.sink.phase = phase
        time.sleep(seconds)
    rig.sink.phase = "ok"
    scenario.join_load(load)

    counts = scenario.settle()
    scenario.assert_exactly_once(counts)
    answers = [a.answer for a in rig.sink.sends()]
    assert {429, 500, None} <= set(answers), "every phase should have met some sends"
    # Retry-After is honoured: nothing came back sooner than asked after a 429.
    for key in {a.key for a in rig.sink.sends()}:
        tries = arrivals_of(rig.sink, key)
        for before, after in zip(tries, tries[1:], strict=False):
            if before.answer == 429:
                assert after.at - before.at >= rig.sink.retry_after - 0.05, (key, tries)
    attempts = max(Delivery.objects.filter(dedupe_key__in=scenario.ledger.expected).values_list("attempts", flat=True))
    assert 1 < attempts < django_settings.DELIVERY_MAX_ATTEMPTS


def test_erp_down(scenario: Scenario) -> None:
    """The ERP refuses every writeback for 6 s (the demo connector's fault plan; a minute at
    production retry pacing), then comes back: each decision is written back exactly once."""
    FaultPlan.objects.update_or_create(pk=1, defaults={"transient_failures_left": 10**6})
    load = scenario.load(events=20, decisions=20, lag=1)
    wait_for(lambda: Decision.objects.exists(), 30, "the first decision")
    time.sleep(6.0)  # from the first decision on, whatever the load's pace
    FaultPlan.objects.filter(pk=1).update(transient_failures_left=0)
    retried = Decision.objects.filter(writeback_attempts__gt=1).count()
    scenario.join_load(load)

    counts = scenario.settle()
    scenario.assert_exactly_once(counts)
    assert retried > 0, "the ERP outage should have made writebacks retry"
    attempts = list(Decision.objects.values_list("writeback_attempts", flat=True))
    assert max(attempts) < django_settings.WRITEBACK_MAX_ATTEMPTS, attempts


def test_postgres_refuses_connections_briefly(scenario: Scenario) -> None:
    """Cut the worker's Postgres (every open connection dropped, new ones refused) for 3 s, at the
    worst moment: the platform has just accepted a card and is about to answer 200."""
    rig = scenario.rig
    cut_keys: list[str] = []

    def cut(key: str) -> None:
        rig.proxy.cut()
        cut_keys.append(key)
        threading.Timer(3.0, rig.proxy.restore).start()

    rig.sink.before_next_ack(cut)
    load = scenario.load(events=30, decisions=10, pause=0.02)
    wait_for(lambda: cut_keys, 30, "the cut", details=rig.logs)
    scenario.join_load(load)

    counts = scenario.settle()
    scenario.assert_exactly_once(counts)
    assert rig.proxy.cuts == 1
    # The card the platform took just before the cut was recorded once Postgres was back, not re-sent.
    assert [a.answer for a in arrivals_of(rig.sink, cut_keys[0])] == [200]
    assert Delivery.objects.get(dedupe_key=cut_keys[0]).status == Delivery.Status.SENT


def test_fault_helpers_count_honestly() -> None:
    """The sink's counting: a key answered 200 and then seen again is a duplicate; a key retried
    after a 500 is a redelivery."""
    import httpx
    from standardwebhooks import Webhook

    sink = Sink(WEBHOOK_SECRET).start()
    try:
        def post(key: str) -> int:
            body = json.dumps({"type": "card.send", "data": {"address": "a", "idempotency_key": key}})
            now = dt.datetime.now(dt.UTC)
            headers = {"webhook-id": key, "webhook-timestamp": str(int(now.timestamp())),
                       "webhook-signature": Webhook(WEBHOOK_SECRET).sign(key, now, body)}
            return httpx.post(sink.url, content=body, headers=headers).status_code

        sink.phase = "500"
        assert post("k1") == 500
        sink.phase = "ok"
        assert [post("k1"), post("k2"), post("k2")] == [200, 200, 200]
        ledger = Ledger(fault="self-test", expected={"k1", "k2", "k3"})
        sends = sink.sends()
        assert [a.acked_before for a in sends] == [False, False, False, True]
        assert sink.acked_keys() == {"k1", "k2"}
        assert {a.key for a in sends if a.acked_before} == {"k2"}
        assert ledger.expected - sink.acked_keys() == {"k3"}
    finally:
        sink.stop()
