"""The cards of notification rules (topic ``notice.<pk>``), built per recipient when sent or edited.

Every build asks ``authorize()`` again: a recipient who lost access since gets the notice without
data (when the rule says so) or nothing.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from erp.subjects import EventSubject, subject_for_topic
from erp.subjects import status_label as subject_status_label
from im.cards import Card, CardAction, CardField, action_handler_for, no_access_card
from notifications.models import ChatGroup, Notification, NotificationRule
from portal import formatting
from sso.authz import authorize
from sso.models import language_of, time_zone_of
from sso.tokens import make_link_url

# The usual fields of each subject kind, and their labels (gettext at render time).
DEFAULT_FIELDS = {
    "approval": ["number", "amount", "project", "requester"],
    "stock": ["sku", "warehouse_name", "available", "safety_level", "supplier"],
    "order": ["number", "customer", "status", "delivery_date"],
    "receivable": ["number", "customer", "amount"],
}
LABELS = {
    "number": "Number", "amount": "Amount", "project": "Project", "requester": "Requester",
    "sku": "SKU", "item": "Item", "name": "Item", "warehouse": "Warehouse", "warehouse_name": "Warehouse",
    "available": "Available", "quantity": "On hand", "safety_level": "Safety level", "supplier": "Supplier",
    "customer": "Customer", "status": "Status", "delivery_date": "Delivery date", "lines": "Items",
    "title": "Title", "outcome": "Decision", "decided_by": "Decided by", "previous_status": "Previous status",
}
DEFAULT_TITLES = {
    "approval": "%(number)s: %(title)s",
    "stock": "Low stock: %(name)s in %(warehouse_name)s",
    "order": "Order %(number)s: %(status)s",
    "receivable": "Receivable %(number)s changed",
}


def status_label(kind: str, code: str) -> str:
    """A status code of the ERP (``approved``, ``delayed``) as a label in the active language."""
    return subject_status_label(kind, code)


def shown_facts(kind: str, facts: dict[str, Any]) -> dict[str, Any]:
    """The facts as a person reads them, in the active language: status words translated and amounts
    formatted the reader's way (the stored facts keep the codes that rule conditions test)."""
    shown = dict(facts)
    for key in ("status", "previous_status", "outcome"):
        if shown.get(key):
            shown[key] = status_label(kind, str(shown[key]))
    if shown.get("amount_value") not in (None, ""):
        shown["amount"] = formatting.number(shown["amount_value"], decimals=2)
    return shown


def money_of(facts: dict[str, Any]) -> str:
    if facts.get("amount_value") in (None, ""):
        return ""
    return formatting.money(facts["amount_value"], facts.get("currency") or "CNY")


class _Facts(dict):
    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, facts: dict[str, Any]) -> str:
    try:
        return template.format_map(_Facts({k: "" if v is None else v for k, v in facts.items()}))
    except (ValueError, IndexError, AttributeError):
        return template  # a malformed template shows as written rather than failing the send


def merged_facts(notification: Notification, subject: EventSubject) -> dict[str, Any]:
    """The subject as it is now, plus what only the event carried (the supplier's contact)."""
    now = {k: v for k, v in subject.facts.items() if v not in ("", None)}
    return {**notification.facts, **now}


def _kind(topic: str) -> str:
    return topic.split(".", 1)[0]


def render(notification: Notification, recipient: Any, subject: EventSubject | None = None) -> Card | None:
    """The card ``recipient`` sees for this notification now (works on unsaved ones: the preview)."""
    rule: NotificationRule = notification.rule
    if notification.kind == Notification.Kind.DIGEST:
        return _digest(notification, recipient)
    subject = subject or subject_for_topic(notification.subject_topic)
    if subject is None:
        return None
    if not authorize(recipient, subject.view_action, subject.obj):
        return _notice(notification, recipient) if rule.notice_without_access else None
    raw = merged_facts(notification, subject)
    kind = _kind(subject.topic)
    with translation.override(language_of(recipient)), timezone.override(time_zone_of(recipient)):
        facts = shown_facts(kind, raw)
        zh = (translation.get_language() or "").startswith("zh")
        title = fill((rule.title_zh if zh else rule.title_en) or rule.title_zh or rule.title_en, facts)
        if not title:
            title = _(DEFAULT_TITLES.get(kind, "%(number)s")) % _Facts(facts)
        body = fill((rule.body_zh if zh else rule.body_en) or rule.body_zh or rule.body_en, facts)
        status, status_text = raw.get("status", ""), ""
        if notification.kind == Notification.Kind.REMINDER:
            title = _("Reminder: %s") % title
            status_text = _("Still waiting for a decision.")
        elif notification.kind == Notification.Kind.ESCALATION:
            title = _("Escalated: %s") % title
            status_text = _("Not decided in time: %s") % notification.reason
        if facts.get("delayed"):
            # Delays stand out: a status every platform colours, and a mark in the title.
            status, status_text = "delayed", _("Delivery delayed")
            title = "⚠ " + title
        elif kind == "stock" and facts.get("below_safety"):
            status, status_text = "low_stock", _("Below the safety level")
        elif kind == "approval" and not status_text:
            status_text = subject.obj.status_label
        elif kind == "order" and not status_text:
            status_text = str(facts.get("status", ""))
        fields = [
            CardField(_(LABELS.get(name, name)), money_of(raw) if name == "amount" else str(facts.get(name, "")))
            for name in (rule.fields or DEFAULT_FIELDS.get(kind, []))
            if facts.get(name) not in (None, "")
        ]
        link = make_link_url(recipient, subject.link_path) if subject.link_path else ""
        return Card(
            topic=notification.topic if notification.pk else "notice.preview",
            title=title[:200],
            status=status,
            status_label=status_text,
            link=link,
            link_label=_("Open") if link else "",
            locale=translation.get_language(),
            amount=money_of(raw) if kind == "approval" else "",
            fields=fields,
            actions=_actions(rule, recipient, subject),
            note=body,
        )


def _actions(rule: NotificationRule, recipient: Any, subject: EventSubject) -> list[CardAction]:
    actions = []
    obj = subject.obj
    if _kind(subject.topic) == "approval" and obj.status == "pending":
        if authorize(recipient, "approvals.decide", obj):
            what = {"number": obj.external_id, "amount": formatting.money(obj.amount, obj.currency)}
            actions += [
                CardAction("approve", _("Approve"), "primary", confirm=_("Approve %(number)s for %(amount)s?") % what),
                CardAction("reject", _("Reject"), "danger", confirm=_("Reject %(number)s for %(amount)s?") % what),
            ]
        if rule.discuss_action:
            actions.append(CardAction("discuss", _("Discuss")))
    if rule.group_mode == NotificationRule.GroupMode.BUTTON and authorize(recipient, "groups.create"):
        is_open = ChatGroup.objects.filter(subject_topic=subject.topic, purpose=ChatGroup.Purpose.WAR_ROOM,
                                           state=ChatGroup.State.OPEN).exists()
        if not is_open:
            actions.append(CardAction("group", _("Open a group chat")))
    return actions


def _notice(notification: Notification, recipient: Any) -> Card:
    with translation.override(language_of(recipient)):
        return no_access_card(notification.topic if notification.pk else "notice.preview",
                              _("Something needs your attention"))


def _digest(notification: Notification, recipient: Any) -> Card:
    items = list(notification.items.order_by("created_at"))
    with translation.override(language_of(recipient)):
        fields = []
        for item in items:
            subject = subject_for_topic(item.subject_topic)
            if subject is None or not authorize(recipient, subject.view_action, subject.obj):
                continue  # a digest line is re-checked like any card
            facts = {**item.facts, **subject.facts}
            fields.append(CardField(str(facts.get("number") or facts.get("sku") or ""),
                                    str(facts.get("status") or facts.get("title") or facts.get("name") or "")))
        return Card(
            topic=notification.topic,
            title=_("%(count)s updates: %(rule)s") % {"count": len(fields), "rule": notification.rule.name},
            status="digest",
            status_label=_("Digest of low-priority notifications"),
            link="",
            link_label="",
            locale=translation.get_language(),
            fields=fields,
        )


def build(topic: str, recipient: Any) -> Card | None:
    _kind_, _sep, ident = topic.partition(".")
    notification = Notification.objects.select_related("rule").filter(pk=int(ident) if ident.isdigit() else 0).first()
    if notification is None or notification.recipient_id != recipient.pk:
        return None
    return render(notification, recipient)


def handle_action(topic: str, actor: Any, action_id: str, idempotency_key: str) -> str:
    """Buttons of a rule's card: approve/reject go through the subject's own card handler (approvals:
    decide() and authorize()); "group" and "discuss" open group chats, checked here."""
    from notifications import groups

    _kind_, _sep, ident = topic.partition(".")
    notification = Notification.objects.select_related("rule").filter(pk=int(ident) if ident.isdigit() else 0).first()
    if notification is None:
        return _("This action is no longer available.")
    with translation.override(language_of(actor)):
        subject_action = action_handler_for(notification.subject_topic)
        if action_id in ("approve", "reject") and subject_action is not None:
            return subject_action(notification.subject_topic, actor, action_id, idempotency_key)
        subject = subject_for_topic(notification.subject_topic)
        if subject is None or not authorize(actor, subject.view_action, subject.obj):
            return _("This action is no longer available.")
        subject.facts = merged_facts(notification, subject)
        if action_id == "group" and notification.rule.group_mode:
            if not authorize(actor, "groups.create"):
                return _("You may not open group chats.")
            group = groups.open_war_room(notification.rule, subject, subject.obj.connector, opened_by=actor)
            return _("Group chat “%s” is open.") % group.name
        if action_id == "discuss" and notification.rule.discuss_action:
            group = groups.open_review_group(notification.rule, subject, opened_by=actor)
            return _("Review group “%s” is open.") % group.name
    return _("This action is no longer available.")
