"""The rule engine: which rules an ERP event matches, whom they tell (and why), and what follows.

``on_event`` runs as an ``erp.events`` post-hook after the event type's own handler, inside the
intake's transaction, so it reads the freshly written mirror. Each rule runs in its own savepoint:
a broken rule is logged and skipped, it never refuses the ERP's event. ``preview`` answers the admin's
"who would be told, and what would they see?" without writing anything.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from erp.events import ErpEvent
from erp.subjects import EventSubject, money, subject_for_topic, subject_of
from im.services import Recipient
from notifications.models import ChatGroup, Notification, NotificationRule, RuleState
from sso.authz import authorize
from sso.models import display_name, time_zone_of
from sso.selectors import role_holders, user_for_login

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """One rule against one event: for the admin preview and the tests."""

    rule: NotificationRule
    matched: bool
    conditions: list[tuple[bool, str]] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


# --- conditions ---------------------------------------------------------------------------------


def check_conditions(rule: NotificationRule, subject: EventSubject) -> list[tuple[bool, str]]:
    """Each condition of the rule with whether it holds, in words (the preview shows them)."""
    f = subject.facts
    checks: list[tuple[bool, str]] = []
    amount = Decimal(f.get("amount_value") or 0)
    if rule.min_amount is not None:
        checks.append((amount > rule.min_amount,
                       _("amount %(a)s over %(n)s") % {"a": f.get("amount"), "n": rule.min_amount}))
    if rule.unusual_factor is not None:
        usual = _usual_amount(subject)
        ok = usual is not None and amount > usual * rule.unusual_factor
        checks.append((ok, _("amount %(a)s over %(f)s × the usual %(u)s") % {
            "a": f.get("amount"), "f": rule.unusual_factor, "u": money(usual) if usual is not None else "—"}))
    if rule.kinds:
        checks.append((f.get("kind") in rule.kinds,
                       _("kind %(v)s in %(list)s") % {"v": f.get("kind"), "list": rule.kinds}))
    if rule.statuses:
        value = f.get("outcome") or f.get("status")
        checks.append((value in rule.statuses, _("status %(v)s in %(list)s") % {"v": value, "list": rule.statuses}))
    if rule.warehouses:
        checks.append((f.get("warehouse") in rule.warehouses,
                       _("warehouse %(v)s in %(list)s") % {"v": f.get("warehouse"), "list": rule.warehouses}))
    if rule.projects:
        checks.append((f.get("project") in rule.projects,
                       _("project %(v)s in %(list)s") % {"v": f.get("project"), "list": rule.projects}))
    if rule.customers:
        checks.append((f.get("customer") in rule.customers,
                       _("customer %(v)s in %(list)s") % {"v": f.get("customer"), "list": rule.customers}))
    if rule.urgent_only:
        checks.append((bool(f.get("urgent")), _("urgent")))
    if rule.below_safety_only:
        checks.append((bool(f.get("below_safety")), _("available %(a)s below the safety level %(s)s") % {
            "a": f.get("available"), "s": f.get("safety_level")}))
    if rule.delayed_only:
        checks.append((bool(f.get("delayed")), _("delivery delayed")))
    return checks


USUAL_SAMPLE = 500  # the most recent objects of the kind that make "the usual amount"


def _usual_amount(subject: EventSubject) -> Decimal | None:
    """The median amount of the latest earlier objects of the same kind in the same ERP (the "usual
    range"), for subjects that have a kind and an amount (approval documents).

    A median of positive amounts, not an average: one mistyped −99,999,999 made the average
    negative, and every claim was then "over N × the usual"."""
    obj = subject.obj
    if not all(hasattr(obj, name) for name in ("connector_id", "kind", "amount", "created_at")):
        return None
    amounts = sorted(
        type(obj)._default_manager.filter(connector=obj.connector, kind=obj.kind, amount__gt=0)
        .exclude(pk=subject.obj.pk)
        .exclude(pk__in=subject.unseen)
        .order_by("-created_at")
        .values_list("amount", flat=True)[:USUAL_SAMPLE]
    )
    if not amounts:
        return None
    middle = len(amounts) // 2
    return amounts[middle] if len(amounts) % 2 else (amounts[middle - 1] + amounts[middle]) / 2


# --- recipients ---------------------------------------------------------------------------------


def targets(rule: NotificationRule, subject: EventSubject, connector: Any) -> list[Recipient]:
    """Everyone the rule names for this subject, once each, with the first reason that named them."""
    found: dict[int, Recipient] = {}

    def add(user: Any, reason: str) -> None:
        if user is not None and user.is_active and user.pk not in found:
            found[user.pk] = Recipient(user, reason)

    obj = subject.obj
    if rule.to_approvers and hasattr(obj, "assignments"):
        for assignment in obj.assignments.exclude(user=None).select_related("user"):
            add(assignment.user, _("approver named by the ERP (%s)") % assignment.erp_login)
    for user, role in role_holders(connector, list(rule.erp_roles or [])):
        add(user, _("holds the ERP role %s") % role)
    for user in rule.users.all():
        add(user, _("named in the rule"))
    if rule.to_owner:
        owner = getattr(obj, "requester", None)
        if owner is None and subject.facts.get("sales_rep"):
            owner = user_for_login(connector, subject.facts["sales_rep"])
        add(owner, _("the document's owner"))
    if rule.to_sales_rep and subject.facts.get("sales_rep"):
        add(user_for_login(connector, subject.facts["sales_rep"]),
            _("sales rep of %s") % subject.facts.get("customer", ""))
    return list(found.values())


def chat_groups_for(rule: NotificationRule, subject: EventSubject) -> list[ChatGroup]:
    groups = []
    if rule.chat_group_id and rule.chat_group.state == ChatGroup.State.OPEN:
        groups.append(rule.chat_group)
    if rule.to_customer_group and subject.facts.get("customer"):
        groups += list(ChatGroup.objects.filter(
            purpose=ChatGroup.Purpose.SALES, customer=subject.facts["customer"], state=ChatGroup.State.OPEN))
    return list({g.pk: g for g in groups}.values())


# --- quiet hours --------------------------------------------------------------------------------


def _quiet(rule: NotificationRule, t: dt.time) -> bool:
    start, end = rule.quiet_start, rule.quiet_end
    if start is None or end is None or start == end:
        return False
    return start <= t < end if start < end else (t >= start or t < end)


def next_allowed(rule: NotificationRule, user: Any, now: dt.datetime) -> dt.datetime:
    """The first moment at or after ``now`` outside the rule's quiet hours and on a working day,
    in the recipient's own time zone."""
    tz = ZoneInfo(time_zone_of(user))
    local = now.astimezone(tz)
    days = set(rule.working_days or [])
    for _step in range(16):
        if days and local.weekday() not in days:
            local = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
            continue
        if _quiet(rule, local.timetz().replace(tzinfo=None)):
            end = rule.quiet_end
            day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
            local = dt.datetime.combine(day, end, tzinfo=tz)
            continue
        break
    return local.astimezone(dt.UTC) if local != now.astimezone(tz) else now


# --- running the rules --------------------------------------------------------------------------


def rules_for_event(event_type: str) -> list[NotificationRule]:
    """The enabled rules of a type; read once per batch of ERP events in a worker."""
    from erp.handling import read_once_per_batch
    from sso import snapshot

    fields = [f.attname for f in NotificationRule._meta.concrete_fields]

    def rows() -> list[tuple]:
        return list(NotificationRule.objects.filter(enabled=True, event_type=event_type).order_by("pk")
                    .values_list(*fields))

    # Kept per process while the permission stamp holds (NotificationRule is watched: a change in admin
    # counts at the next event in every process). Each event gets instances of its own, so a related
    # object read through one (its chat group) is never kept.
    return read_once_per_batch(("notification rules", event_type), lambda: [
        NotificationRule.from_db(None, fields, copy.deepcopy(row))
        for row in snapshot.kept(("notification rules", event_type), rows)])


def on_event(event: ErpEvent) -> None:
    """The post-hook: built-in routing (delegates, archiving), then every enabled rule of the type."""
    subject = subject_of(event)
    if subject is None:
        return
    if event.type == "erp.approval.requested":
        route_to_delegates(event, subject)
    if event.type == "erp.approval.decided":
        refresh_notices(subject.topic)
    if event.type == "erp.stock.changed" and not subject.facts.get("below_safety"):
        from notifications.groups import archive_groups_about

        archive_groups_about(subject.topic, _("Stock is back above the safety level."))
    # A decision is told once, whether the portal made it (on_decision_saved) or the ERP reports it.
    key = f"{subject.topic}:{subject.facts.get('outcome')}" if event.type == "erp.approval.decided" else event.id
    for rule in rules_for_event(event.type):
        try:
            with transaction.atomic():
                run_rule(rule, event.connector, key, event.type, subject)
        except Exception:  # a broken rule must not refuse the ERP's event
            logger.exception("notification rule %s failed on %s", rule.pk, event.id)


def on_decision_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A decision made in the portal (page, card, bulk) runs the rules on erp.approval.decided."""
    if not created:
        return
    document = instance.document  # as decide() read it, locked, in this transaction
    subject = subject_for_topic(document.topic, document)
    if subject is None:
        return
    subject.facts["status"] = subject.facts["outcome"] = instance.outcome
    subject.facts["decided_by"] = display_name(instance.actor)
    refresh_notices(document.topic)
    for rule in rules_for_event("erp.approval.decided"):
        try:
            with transaction.atomic():
                # The same key as the ERP's echo of this decision would give: told once.
                run_rule(rule, document.connector, f"{document.topic}:{instance.outcome}", "erp.approval.decided",
                         subject)
        except Exception:
            logger.exception("notification rule %s failed on decision %s", rule.pk, instance.pk)


def refresh_notices(subject_topic: str) -> None:
    """Cards that rules sent about a document are edited too when it changes (buttons go)."""
    from im.services import refresh_cards

    for pk in Notification.objects.filter(subject_topic=subject_topic).exclude(
        status=Notification.Status.SKIPPED).values_list("pk", flat=True):
        refresh_cards(f"notice.{pk}")


def route_to_delegates(event: ErpEvent, subject: EventSubject) -> None:
    """Out of office: new approval cards also go to whoever holds a delegation from an approver."""
    from erp.handling import read_many_once_per_batch
    from im.services import enqueue_cards
    from sso import snapshot
    from sso.models import Delegation

    now = timezone.now()
    recipients = []
    approvers = event.notes.get("approvers")  # a new document's, from its handler
    if approvers is None:
        approvers = {a.user_id: a.user for a in subject.obj.assignments.exclude(user=None).select_related("user")}
    def read(delegator_ids: list[int]) -> dict[int, list[Delegation]]:
        # One read for every approver's delegations (none while this process's copy is valid,
        # sso.snapshot); in force is decided here, now.
        kept = snapshot.delegations_from(delegator_ids)
        return {pk: [d for d in kept[pk] if d.starts_at <= now < d.ends_at] for pk in delegator_ids}

    # Once per batch of events for each approver: a worker's batch names the same approvers again and again.
    by_delegator = read_many_once_per_batch("delegations in force", sorted(approvers), read)
    for delegation in (d for delegator_id in sorted(approvers) for d in by_delegator[delegator_id] or []):
        if "approvals.decide" in (delegation.actions or []) and delegation.delegate.is_active:
            until = timezone.localtime(delegation.ends_at).strftime("%Y-%m-%d %H:%M")
            recipients.append(Recipient(
                user=delegation.delegate,
                reason=_("delegate of %(name)s (out of office until %(until)s)")
                % {"name": display_name(approvers[delegation.delegator_id]), "until": until},
            ))
    if recipients:
        enqueue_cards(subject.topic, recipients, dedupe_prefix=f"{event.connector.slug}:{event.id}:delegate")


def _edge(rule: NotificationRule, subject: EventSubject, holds: bool) -> bool:
    """Edge-triggered rules fire when the condition starts holding, not on every event while it holds."""
    if not rule.below_safety_only:
        return holds
    state = RuleState.objects.select_for_update().filter(rule=rule, subject_topic=subject.topic).first()
    if not holds:
        if state is not None and state.active:
            state.active = False
            state.save(update_fields=["active", "changed_at"])
        return False
    if state is not None and state.active:
        return False
    RuleState.objects.update_or_create(rule=rule, subject_topic=subject.topic, defaults={"active": True})
    return True


def run_rule(rule: NotificationRule, connector: Any, event_id: str, event_type: str, subject: EventSubject) -> None:
    holds = all(ok for ok, _text in check_conditions(rule, subject))
    if not _edge(rule, subject, holds):
        return
    now = timezone.now()
    for target in targets(rule, subject, connector):
        notify(rule, target, subject, event_id=event_id, event_type=event_type, now=now)
    from notifications import groups

    for group in chat_groups_for(rule, subject):
        groups.post_card(group, rule, subject, key=f"{event_id}:rule{rule.pk}")
    if rule.group_mode == NotificationRule.GroupMode.AUTO:
        groups.open_war_room(rule, subject, connector, opened_by=None)


def notify(
    rule: NotificationRule,
    target: Recipient,
    subject: EventSubject,
    *,
    event_id: str,
    event_type: str,
    now: dt.datetime,
    kind: str = Notification.Kind.EVENT,
) -> Notification | None:
    """One notification for one person: filtered through authorize(), held for quiet hours, put in a
    digest, or sent now. Its reason is what the Delivery and the admin show."""
    verdict = authorize(target.user, subject.view_action, subject.obj)
    status = Notification.Status.QUEUED
    if not verdict and not rule.notice_without_access:
        status = Notification.Status.SKIPPED
    elif kind == Notification.Kind.EVENT and not rule.initial_card:
        status = Notification.Status.TRACKING
    elif kind == Notification.Kind.EVENT and rule.digest and rule.priority == NotificationRule.Priority.LOW:
        status = Notification.Status.IN_DIGEST
    send_at = next_allowed(rule, target.user, now)
    if status == Notification.Status.QUEUED and send_at > now:
        status = Notification.Status.HELD
    notification, created = Notification.objects.get_or_create(
        rule=rule, kind=kind, event_id=event_id[:200], recipient=target.user,
        defaults={
            "status": status,
            "event_type": event_type,
            "subject_topic": subject.topic,
            "reason": target.reason[:200],
            "facts": {k: v for k, v in subject.facts.items() if isinstance(v, str | bool | int)},
            "send_at": send_at,
        },
    )
    if created and status == Notification.Status.QUEUED:
        dispatch(notification)
    return notification if created else None


def delivery_reason(notification: Notification) -> str:
    return (_("rule “%(rule)s”: %(why)s") % {"rule": notification.rule.name, "why": notification.reason})[:200]


def dispatch(notification: Notification) -> None:
    """Outbox rows for the card (``notice.<pk>``) on the rule's platforms; sent after commit."""
    from im.platforms import enabled_platforms
    from im.services import OutboxItem, write_outbox

    platforms = [p for p in enabled_platforms() if not notification.rule.platforms or p in notification.rule.platforms]
    reason = delivery_reason(notification)
    write_outbox([
        OutboxItem(dedupe_key=f"notice.{notification.pk}:{notification.recipient_id}:{platform}",
                   topic=notification.topic, platform=platform, recipient=notification.recipient, reason=reason)
        for platform in platforms
    ])
    Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.QUEUED, sent_at=timezone.now())


# --- preview (admin "test with a sample event") ---------------------------------------------------


def preview(rule: NotificationRule, connector: Any, event_type: str, data: dict[str, Any]) -> Outcome:
    """What the rule would do with this event now, written nowhere (a rolled-back savepoint)."""
    from im.cards import Card
    from notifications.cards import render

    event = ErpEvent(connector=connector, id="preview", type=event_type, source="urn:preview", subject="", data=data)
    subject = subject_of(event)
    if subject is None:
        return Outcome(rule, False, [(False, _("the sample refers to nothing mirrored in the portal"))])
    conditions = check_conditions(rule, subject)
    matched = all(ok for ok, _t in conditions)
    outcome = Outcome(rule, matched, conditions)
    if not matched:
        # What the rule would really do: nothing. Listing recipients and cards beside "does not
        # fire" contradicted itself; the people it would reach are shown, with no card.
        for target in targets(rule, subject, connector):
            verdict = authorize(target.user, subject.view_action, subject.obj)
            outcome.people.append({
                "user": target.user, "reason": target.reason, "allowed": bool(verdict), "verdict": verdict.reason,
                "sees": _("nothing: the rule does not fire for this event"), "card": None, "send_at": None,
            })
        return outcome
    for target in targets(rule, subject, connector):
        verdict = authorize(target.user, subject.view_action, subject.obj)
        n = Notification(rule=rule, event_type=event_type, event_id="preview", subject_topic=subject.topic,
                         recipient=target.user, reason=target.reason, facts=subject.facts)
        card: Card | None = render(n, target.user, subject)
        if verdict:
            sees = _("the card below")
        elif rule.notice_without_access:
            sees = _("a notice without the data")
        else:
            sees = _("nothing: may not view it")
        outcome.people.append({
            "user": target.user, "reason": target.reason, "allowed": bool(verdict),
            "verdict": verdict.reason, "sees": sees, "card": card,
            "send_at": next_allowed(rule, target.user, timezone.now()),
        })
    for group in chat_groups_for(rule, subject):
        outcome.groups.append(_("group “%(name)s” gets only: %(fields)s") % {
            "name": group.name, "fields": ", ".join(rule.group_fields) or _("the title")})
    if rule.group_mode:
        outcome.groups.append(_("a group chat is opened (%s)") % rule.get_group_mode_display())
    return outcome


def users_named(logins: list[str]) -> list[Any]:
    return list(get_user_model().objects.filter(username__in=logins))
