"""Follow-ups of notification rules (the beat ``tick``) and the manager's bulk approval.

Everything here is safe to run twice: follow-ups are recorded on the notification they follow, and
``Notification`` is unique per (rule, kind, event, recipient).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from erp.subjects import subject_for_topic
from im.services import Recipient
from notifications.engine import dispatch, notify
from notifications.models import Notification, NotificationRule
from sso.models import display_name
from sso.selectors import role_holders


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    return {
        "released": release_held(now),
        "digests": send_digests(now),
        "followups": follow_up(now),
    }


def release_held(now: dt.datetime) -> int:
    count = 0
    for notification in Notification.objects.filter(status=Notification.Status.HELD, send_at__lte=now):
        with transaction.atomic():
            if Notification.objects.filter(pk=notification.pk, status=Notification.Status.HELD).update(
                status=Notification.Status.QUEUED
            ):
                dispatch(notification)
                count += 1
    return count


def send_digests(now: dt.datetime) -> int:
    """One card per (rule, person) for the low-priority notifications gathered since the last one."""
    sent = 0
    pending = Notification.objects.filter(status=Notification.Status.IN_DIGEST).select_related("rule")
    batches: dict[tuple[int, int], list[Notification]] = {}
    for n in pending:
        batches.setdefault((n.rule_id, n.recipient_id), []).append(n)
    for (_rule_id, _user_id), items in batches.items():
        rule = items[0].rule
        if min(i.created_at for i in items) > now - dt.timedelta(minutes=rule.digest_minutes):
            continue
        with transaction.atomic():
            digest = Notification.objects.create(
                rule=rule, kind=Notification.Kind.DIGEST, status=Notification.Status.QUEUED,
                event_type=rule.event_type, event_id=f"digest:{uuid.uuid4().hex}",
                subject_topic="", recipient=items[0].recipient,
                reason=_("digest of %s low-priority notifications") % len(items),
            )
            Notification.objects.filter(pk__in=[i.pk for i in items]).update(
                status=Notification.Status.DIGESTED, digest=digest)
            dispatch(digest)
        sent += 1
    return sent


def follow_up(now: dt.datetime) -> int:
    """Reminders to the same person and escalation to the rule's managers for approvals still pending
    after N / M hours. Cards go through ``notify``: authorize(), quiet hours, reasons."""
    done = 0
    rules = NotificationRule.objects.filter(enabled=True, event_type="erp.approval.requested").exclude(
        remind_after_hours=None, escalate_after_hours=None)
    for rule in rules:
        originals = Notification.objects.filter(rule=rule, kind=Notification.Kind.EVENT).exclude(
            status=Notification.Status.SKIPPED).select_related("recipient")
        for original in originals:
            steps = set(original.followed_up or [])
            if "closed" in steps:
                continue
            subject = subject_for_topic(original.subject_topic)
            if subject is None or subject.obj.status != "pending":
                _mark(original, "closed")
                continue
            age = now - original.created_at
            if rule.remind_after_hours and "remind" not in steps and age >= dt.timedelta(hours=rule.remind_after_hours):
                with transaction.atomic():
                    notify(rule, Recipient(original.recipient, _("reminder: still waiting after %s h") %
                                        rule.remind_after_hours),
                           subject, event_id=original.event_id, event_type=original.event_type, now=now,
                           kind=Notification.Kind.REMINDER)
                    _mark(original, "remind")
                done += 1
            if (rule.escalate_after_hours and "escalate" not in steps
                    and age >= dt.timedelta(hours=rule.escalate_after_hours)):
                with transaction.atomic():
                    why = _("%(name)s has not decided %(number)s for %(hours)s h") % {
                        "name": display_name(original.recipient), "number": subject.facts.get("number"),
                        "hours": rule.escalate_after_hours}
                    for user in escalation_targets(rule, subject.obj.connector, exclude=original.recipient):
                        notify(rule, Recipient(user, why), subject, event_id=original.event_id,
                               event_type=original.event_type, now=now, kind=Notification.Kind.ESCALATION)
                    _mark(original, "escalate")
                done += 1
    return done


def escalation_targets(rule: NotificationRule, connector: Any, *, exclude: Any) -> list[Any]:
    people = [u for u, _role in role_holders(connector, list(rule.escalate_to_roles or []))]
    people += list(rule.escalate_to_users.filter(is_active=True))
    return [u for u in {u.pk: u for u in people}.values() if u.pk != exclude.pk]


def _mark(notification: Notification, step: str) -> None:
    steps = list(notification.followed_up or [])
    if step not in steps:
        steps.append(step)
    notification.followed_up = steps
    Notification.objects.filter(pk=notification.pk).update(followed_up=steps)


