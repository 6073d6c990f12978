"""The foresight jobs (run by beat, never in a request) and what card buttons do.

Each job reads the ERP through the connector's optional capabilities, records a ``ModelRun``
(version, parameters, metrics) and stamps that version on what it produced.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from erp.connectors import get_connector
from erp.connectors.base import (
    CREATE_REQUISITION,
    DEMAND_HISTORY,
    EXPENSE_HISTORY,
    INVOICE_HISTORY,
    REPLENISHMENT,
    ConnectorError,
    DocumentLine,
    RequisitionRequest,
    supports,
)
from erp.models import Connector
from foresight import anomaly, credit, demand, restock
from foresight.models import ExpenseScore, Feedback, ModelRun, ReceivableRisk, RestockSuggestion, SeriesForecast
from im.services import Recipient, enqueue_cards, refresh_cards
from sso.authz import authorize
from sso.selectors import identity_of, role_holders, users_for_login

logger = logging.getLogger(__name__)


class ActionRefused(Exception):
    """A card button that may not (or can no longer) do what it says; the message is for the presser."""


def erp_of(connector: Connector) -> Any:
    return get_connector(connector.kind, connector)


def connectors_with(capability: str) -> list[tuple[Connector, Any]]:
    found = []
    for row in Connector.objects.filter(enabled=True).order_by("pk"):
        try:
            erp = erp_of(row)
        except LookupError:
            continue
        if supports(erp, capability):
            found.append((row, erp))
    return found


def _start(connector: Connector, kind: str, params: dict[str, Any]) -> ModelRun:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return ModelRun.objects.create(connector=connector, kind=kind, params=params,
                                   version=f"{kind}-{stamp}-{uuid.uuid4().hex[:6]}")


def _finish(run: ModelRun, metrics: dict[str, Any], started: float) -> ModelRun:
    run.metrics = {**metrics, "seconds": round(time.monotonic() - started, 2)}
    run.status = ModelRun.Status.DONE
    run.finished_at = timezone.now()
    run.save(update_fields=["metrics", "status", "finished_at"])
    return run


def _fail(run: ModelRun, error: str) -> ModelRun:
    run.status, run.error, run.finished_at = ModelRun.Status.FAILED, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


# --- demand and restock -------------------------------------------------------------------------


def history_end(today: dt.date) -> dt.date:
    """The last complete week ends on the last Sunday before today: weekly buckets then stay put all
    week, so a series is refitted once a week at most (its fingerprint changes only then)."""
    return today - dt.timedelta(days=today.weekday() + 1)


def run_demand(connector: Connector, *, today: dt.date | None = None) -> ModelRun | None:
    """Refit the series whose history changed (bounded per run), then restock suggestions and cards."""
    erp = erp_of(connector)
    if not (supports(erp, DEMAND_HISTORY) and supports(erp, REPLENISHMENT)):
        return None
    today = today or timezone.localdate()
    end = history_end(today)
    weeks, horizon = settings.FORESIGHT_HISTORY_WEEKS, settings.FORESIGHT_HORIZON_WEEKS
    started = time.monotonic()
    run = _start(connector, ModelRun.Kind.DEMAND, {
        "history_end": end.isoformat(), "weeks": weeks, "horizon": horizon,
        "service_level": settings.FORESIGHT_SERVICE_LEVEL, "review_weeks": settings.FORESIGHT_REVIEW_WEEKS,
        "methods": list(demand.METHODS),
    })
    try:
        series = demand.weekly_series(erp.demand_history(since=end - dt.timedelta(days=7 * weeks - 1)), end, weeks)
        existing = {(f.sku, f.warehouse): f for f in SeriesForecast.objects.filter(connector=connector)}
        stale_before = timezone.now() - dt.timedelta(days=settings.FORESIGHT_REFIT_DAYS)
        due = []
        for key, y in series.items():
            old = existing.get(key)
            fp = demand.fingerprint(y)
            if old is None or old.fingerprint != fp or old.fitted_at < stale_before:
                due.append((old.fitted_at if old else dt.datetime.min.replace(tzinfo=dt.UTC), key, y, fp))
        due.sort(key=lambda d: (d[0], d[1]))  # never fitted or oldest first: a bounded run still progresses
        methods: dict[str, int] = {}
        for _at, (sku, warehouse), y, fp in due[: settings.FORESIGHT_MAX_SERIES_PER_RUN]:
            choice = demand.choose(y, horizon)
            methods[choice.method] = methods.get(choice.method, 0) + 1
            SeriesForecast.objects.update_or_create(
                connector=connector, sku=sku, warehouse=warehouse,
                defaults={"run": run, "method": choice.method,
                          "forecast": [round(float(v), 3) for v in choice.forecast], "sigma": choice.sigma,
                          "backtest": choice.backtest, "fingerprint": fp,
                          "history_end": end, "fitted_at": timezone.now()},
            )
        suggestions = _restock(connector, erp, run)
    except Exception as exc:
        _fail(run, repr(exc))
        raise
    return _finish(run, {"series": len(series), "refitted": min(len(due), settings.FORESIGHT_MAX_SERIES_PER_RUN),
                         "waiting": max(len(due) - settings.FORESIGHT_MAX_SERIES_PER_RUN, 0), "methods": methods,
                         **suggestions}, started)


def _restock(connector: Connector, erp: Any, run: ModelRun) -> dict[str, int]:
    forecasts = {(f.sku, f.warehouse): f for f in SeriesForecast.objects.filter(connector=connector)}
    recent = timezone.now() - dt.timedelta(days=settings.FORESIGHT_DISMISS_DAYS)
    quiet = set(RestockSuggestion.objects.filter(
        connector=connector, status__in=[RestockSuggestion.Status.DISMISSED, RestockSuggestion.Status.REQUISITIONED],
        closed_at__gte=recent).values_list("sku", "warehouse"))
    opened = updated = resolved = 0
    for pos in erp.replenishment():
        f = forecasts.get((pos.sku, pos.warehouse))
        if f is None:
            continue
        position = float(pos.on_hand - pos.reserved + pos.on_order)
        p = restock.plan(np.array(f.forecast), f.sigma, lead_time_days=pos.lead_time_days, position=position,
                         service_level=settings.FORESIGHT_SERVICE_LEVEL, review_weeks=settings.FORESIGHT_REVIEW_WEEKS)
        current = RestockSuggestion.objects.filter(connector=connector, sku=pos.sku, warehouse=pos.warehouse,
                                                   status=RestockSuggestion.Status.OPEN).first()
        if p.quantity <= 0 or (pos.sku, pos.warehouse) in quiet:
            if current is not None and p.quantity <= 0:
                current.status, current.closed_at = RestockSuggestion.Status.RESOLVED, timezone.now()
                current.save(update_fields=["status", "closed_at", "updated_at"])
                refresh_cards(current.topic)
                resolved += 1
            continue
        values = {
            "name": pos.name, "warehouse_name": pos.warehouse_name, "unit": pos.unit, "supplier": pos.supplier,
            "on_hand": pos.on_hand, "reserved": pos.reserved, "on_order": pos.on_order,
            "reorder_point": _dec(p.reorder_point), "erp_reorder_point": pos.reorder_point,
            "quantity": Decimal(p.quantity), "unit_price": pos.unit_price, "currency": pos.currency,
            "lead_time_days": pos.lead_time_days, "lead_time_demand": p.lead_time_demand,
            "safety_stock": p.safety_stock, "service_level": settings.FORESIGHT_SERVICE_LEVEL,
            "days_of_cover": min(p.days_of_cover, 9999.0), "method": f.method, "weekly_forecast": f.forecast[:8],
            "run": run,
        }
        if current is None:
            RestockSuggestion.objects.create(connector=connector, sku=pos.sku, warehouse=pos.warehouse, **values)
            opened += 1
        else:
            for name, value in values.items():
                setattr(current, name, value)
            current.save()
            if current.notified_at:
                refresh_cards(current.topic)
            updated += 1
    notified = _notify_restock(connector)
    return {"suggestions_opened": opened, "suggestions_updated": updated, "suggestions_resolved": resolved,
            "cards": notified}


def _dec(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


def _notify_restock(connector: Connector) -> int:
    """Cards for open suggestions not yet announced, most urgent first, at most N per run (the rest
    wait for the next run, or are seen in admin)."""
    pending = RestockSuggestion.objects.filter(connector=connector, status=RestockSuggestion.Status.OPEN,
                                               notified_at=None).order_by("days_of_cover", "sku")
    sent = 0
    for suggestion in pending[: settings.FORESIGHT_RESTOCK_MAX_CARDS]:
        recipients = [Recipient(user, f"foresight: ERP role {role}")
                      for user, role in role_holders(connector, settings.FORESIGHT_RESTOCK_ROLES)
                      if authorize(user, "inventory.view", suggestion)]
        with transaction.atomic():
            enqueue_cards(suggestion.topic, recipients, f"restock:{suggestion.pk}")
            suggestion.notified_at = timezone.now()
            suggestion.save(update_fields=["notified_at"])
        sent += 1
    return sent


def create_requisition(suggestion_id: int, actor: Any) -> str:
    """The restock card's "create purchase requisition": once per suggestion, in the actor's ERP name."""
    with transaction.atomic():
        suggestion = RestockSuggestion.objects.select_for_update().filter(pk=suggestion_id).first()
        if suggestion is None or not authorize(actor, "inventory.view", suggestion):
            raise ActionRefused("missing")
        if suggestion.status == RestockSuggestion.Status.REQUISITIONED:
            return suggestion.requisition_number
        if suggestion.status != RestockSuggestion.Status.OPEN:
            raise ActionRefused("closed")
        if not authorize(actor, "foresight.requisition", suggestion):
            raise ActionRefused("forbidden")
        identity = identity_of(suggestion.connector, actor)
        erp = erp_of(suggestion.connector)
        if identity is None or not supports(erp, CREATE_REQUISITION):
            raise ActionRefused("unsupported")
        request = RequisitionRequest(
            requester=identity.erp_login,
            title=f"补货建议: {suggestion.name} ({suggestion.warehouse_name or suggestion.warehouse})",
            lines=[DocumentLine(sku=suggestion.sku, name=suggestion.name, qty=suggestion.quantity,
                                unit_price=suggestion.unit_price)],
            idempotency_key=f"foresight-restock-{suggestion.pk}",
            note=f"{suggestion.run.version}",
        )
        try:
            number = erp.create_requisition(request)
        except ConnectorError as exc:
            logger.warning("requisition for suggestion %s failed: %s", suggestion.pk, exc)
            raise ActionRefused("erp") from exc
        suggestion.status, suggestion.requisition_number = RestockSuggestion.Status.REQUISITIONED, number
        suggestion.closed_by, suggestion.closed_at = actor, timezone.now()
        suggestion.save(update_fields=["status", "requisition_number", "closed_by", "closed_at", "updated_at"])
        Feedback.objects.create(user=actor, kind="restock", object_id=suggestion.pk, action="requisitioned",
                                version=suggestion.run.version, note=number)
        refresh_cards(suggestion.topic)
    return number


def dismiss(kind: str, object_id: int, actor: Any, note: str = "") -> None:
    """Dismiss a suggestion or an alert; the dismissal is kept as feedback (with the model version)."""
    model, action = {"restock": (RestockSuggestion, "inventory.view"),
                     "risk": (ReceivableRisk, "receivables.view")}[kind]
    with transaction.atomic():
        obj = model.objects.select_for_update().filter(pk=object_id).first()
        if obj is None or not authorize(actor, action, obj):
            raise ActionRefused("missing")
        if obj.status != "open":
            raise ActionRefused("closed")
        obj.status = "dismissed"
        fields = ["status"]
        if isinstance(obj, RestockSuggestion):
            obj.closed_by, obj.closed_at = actor, timezone.now()
            fields += ["closed_by", "closed_at"]
        obj.save(update_fields=fields)
        Feedback.objects.create(user=actor, kind=kind, object_id=obj.pk, action="dismissed",
                                version=obj.run.version, note=note)
        refresh_cards(obj.topic)


# --- receivables at risk --------------------------------------------------------------------------


def run_credit(connector: Connector, *, today: dt.date | None = None) -> ModelRun | None:
    """Train on every invoice whose outcome is known, score the open ones not yet due, alert on crossings."""
    erp = erp_of(connector)
    if not supports(erp, INVOICE_HISTORY):
        return None
    today = today or timezone.localdate()
    threshold = settings.FORESIGHT_RISK_THRESHOLD
    started = time.monotonic()
    run = _start(connector, ModelRun.Kind.CREDIT, {"as_of": today.isoformat(), "threshold": threshold,
                                                   "features": list(credit.FEATURES)})
    invoices = erp.invoice_history()
    x, y, kept = credit.training_set(invoices, today)
    if len(y) < 30 or len(set(y.tolist())) < 2:
        _fail(run, f"not enough history: {len(y)} invoices with a known outcome")
        return run
    metrics: dict[str, Any] = {"trained_on": int(len(y)), "late_share": round(float(np.mean(y)), 3)}
    # A check on what the model has not seen: trained as of 120 days ago, tested on what was issued since.
    cutoff = today - dt.timedelta(days=120)
    xh, yh, _ = credit.training_set(invoices, cutoff)
    after = np.array([credit.issued(i) >= cutoff for i in kept])
    if len(set(yh.tolist())) == 2 and after.any():
        p = credit.train(xh, yh).probability(x[after])
        metrics.update({"holdout_invoices": int(after.sum()), "holdout_auc": round(credit.auc(y[after], p), 3),
                        "holdout_brier": round(credit.brier(y[after], p), 3)})
    model = credit.train(x, y)
    grouped = credit.by_customer(invoices)
    open_now = [i for i in invoices if i.paid_on is None and i.amount > i.paid and i.due_on >= today]
    rows = np.array([credit.features(i, grouped[i.customer], today) for i in open_now])
    rows = rows.reshape(-1, len(credit.FEATURES))
    probabilities = model.probability(rows) if len(open_now) else np.array([])
    seen, crossing = set(), []
    for inv, row, probability in zip(open_now, rows, probabilities, strict=True):
        risk = ReceivableRisk.objects.filter(connector=connector, invoice=inv.id).first()
        previous = risk.probability if risk else None
        values = {"customer": inv.customer, "project": inv.project, "sales_rep_login": inv.sales_rep,
                  "amount": inv.amount, "outstanding": inv.amount - inv.paid, "currency": inv.currency,
                  "due_date": inv.due_on, "probability": float(probability), "previous_probability": previous,
                  "reasons": model.reasons(row), "run": run}
        if risk is None:
            risk = ReceivableRisk.objects.create(connector=connector, invoice=inv.id, **values)
        else:
            for name, value in values.items():
                setattr(risk, name, value)
            risk.save()
        seen.add(risk.pk)
        if risk.alerted_at is not None:
            refresh_cards(risk.topic)
        elif risk.status == ReceivableRisk.Status.OPEN and probability >= threshold:
            crossing.append(risk)
    # The most likely first, a few per run: an alert is for what just crossed the line, the weekly
    # digest lists the rest.
    crossing.sort(key=lambda r: (-r.probability, r.invoice))
    for risk in crossing[: settings.FORESIGHT_RISK_MAX_ALERTS]:
        _alert(connector, risk)
    alerts = min(len(crossing), settings.FORESIGHT_RISK_MAX_ALERTS)
    ReceivableRisk.objects.filter(connector=connector, status=ReceivableRisk.Status.OPEN).exclude(pk__in=seen).update(
        status=ReceivableRisk.Status.CLOSED)
    metrics.update({"scored": len(open_now), "alerts": alerts,
                    "above_threshold": int((probabilities >= threshold).sum())})
    return _finish(run, metrics, started)


def risk_recipients(connector: Connector, risk: ReceivableRisk) -> list[Recipient]:
    people = [(u, "foresight: sales rep of the customer") for u in users_for_login(connector, risk.sales_rep_login)]
    people += [(u, f"foresight: ERP role {role}") for u, role in role_holders(connector, settings.FORESIGHT_RISK_ROLES)]
    seen, found = set(), []
    for user, reason in people:
        if user.pk not in seen and authorize(user, "receivables.view", risk):
            seen.add(user.pk)
            found.append(Recipient(user, reason))
    return found


def _alert(connector: Connector, risk: ReceivableRisk) -> None:
    with transaction.atomic():
        enqueue_cards(risk.topic, risk_recipients(connector, risk), f"riskalert:{risk.pk}:{risk.run.version}")
        risk.alerted_at = timezone.now()
        risk.save(update_fields=["alerted_at"])


def send_risk_digest(connector: Connector, *, today: dt.date | None = None) -> int:
    """The weekly digest: one card per sales rep and finance person with open risks they may see."""
    today = today or timezone.localdate()
    year, week, _ = today.isocalendar()
    people: dict[int, Recipient] = {}
    for risk in ReceivableRisk.objects.filter(connector=connector, status=ReceivableRisk.Status.OPEN,
                                              probability__gte=settings.FORESIGHT_DIGEST_MIN):
        for recipient in risk_recipients(connector, risk):
            people.setdefault(recipient.user.pk, recipient)
    with transaction.atomic():
        created = enqueue_cards(f"riskdigest.{connector.pk}", list(people.values()),
                                f"riskdigest:{connector.pk}:{year}-W{week:02d}")
    return len(created)


# --- unusual expenses -----------------------------------------------------------------------------


def run_expense(connector: Connector) -> ModelRun | None:
    """Per-category and per-requester statistics from past claims, then every pending claim scored."""
    from approvals.models import ApprovalDocument

    erp = erp_of(connector)
    if not supports(erp, EXPENSE_HISTORY):
        return None
    started = time.monotonic()
    records = erp.expense_history()
    run = _start(connector, ModelRun.Kind.EXPENSE, {
        "flag_score": settings.FORESIGHT_EXPENSE_FLAG_SCORE, "review_score": settings.FORESIGHT_EXPENSE_REVIEW_SCORE,
        "stats": anomaly.fit(records),
    })
    categories = {r.id: r.category for r in records}
    pending = ApprovalDocument.objects.filter(connector=connector, kind="expense_claim", status="pending")
    flagged = 0
    for document in pending:
        score = score_claim(document, categories.get(document.external_id, ""), run)
        flagged += int(bool(score and score.flagged))
    return _finish(run, {"claims": len(records), "categories": len(run.params["stats"]["category"]),
                         "scored": pending.count(), "flagged": flagged}, started)


def latest_run(connector: Connector, kind: str) -> ModelRun | None:
    return ModelRun.objects.filter(connector=connector, kind=kind, status=ModelRun.Status.DONE).order_by(
        "-finished_at", "-pk").first()


def score_claim(document: Any, category: str, run: ModelRun | None = None) -> ExpenseScore | None:
    """Score one pending claim with the latest statistics; flag its approval card, and open the finance
    review group when it is far out of line. Nothing before the first expense run."""
    run = run or latest_run(document.connector, ModelRun.Kind.EXPENSE)
    if run is None or not category:
        return None
    result = anomaly.assess(run.params["stats"], document.requester_login, category, float(document.amount))
    flagged = result.score >= settings.FORESIGHT_EXPENSE_FLAG_SCORE
    with transaction.atomic():
        score, created = ExpenseScore.objects.update_or_create(document=document, defaults={
            "category": category, "score": result.score, "flagged": flagged,
            "category_median": _dec(result.category_median) if result.category_median else None,
            "category_ratio": result.category_ratio, "requester_ratio": result.requester_ratio,
            "reasons": result.reasons, "run": run,
        })
        refresh_cards(document.topic)  # the approval card shows the flag (or stops showing it)
        if result.score >= settings.FORESIGHT_EXPENSE_REVIEW_SCORE and not score.review_group_opened:
            _open_review_group(document)
            score.review_group_opened = True
            score.save(update_fields=["review_group_opened"])
    return score


def _open_review_group(document: Any) -> None:
    """The scenarios' finance review group: approvers and requester who may view the claim, a data snippet."""
    from erp.subjects import subject_for_topic
    from notifications.groups import open_review_group

    subject = subject_for_topic(document.topic)
    if subject is not None:
        open_review_group(None, subject, opened_by=None)
