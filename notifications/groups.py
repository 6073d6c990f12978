"""Group chats opened by rules: the customer's sales group, a low-stock war room, a review group.

Rows are written in the caller's transaction; the platform calls (create, invite, pin, post,
archive) are outbox rows (``im.services.write_outbox``, kinds ``group_open``/``group_post``/
``group_archive``) performed after commit by the sender, with the same state, retries, dead letters
and safety net as cards, and are idempotent, so a retry never opens a second room.
A group only ever gets what the rule shares (``group_fields``): external members have no portal
account, and the platform shows every message to every member.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from erp.subjects import EventSubject
from im.cards import Card, CardField
from im.models import Delivery
from im.platforms import enabled_platforms, get_adapter
from im.platforms.base import ARCHIVE, EXTERNAL_MEMBERS, WIDGETS, TransportError, Unsupported, supports
from im.services import Deferred, Skip, register_operation
from notifications.cards import DEFAULT_TITLES, LABELS, fill, shown_facts
from notifications.engine import targets
from notifications.models import ChatGroup, ChatGroupMember, GroupPost, NotificationRule
from portal import formatting
from portal.tasks import queue_after_commit
from sso.authz import authorize
from sso.models import display_name
from sso.selectors import role_holders

logger = logging.getLogger(__name__)


def group_platform(rule: NotificationRule | None) -> str:
    enabled = enabled_platforms()
    wanted = [p for p in (rule.platforms if rule else []) if p in enabled]
    return (wanted or enabled or ["devinbox"])[0]


def _queue(kind: str, group: ChatGroup, ref: int, reason: str = "") -> None:
    """A platform operation on a group chat goes through the outbox like a card: a ``Delivery`` row
    (written with the caller's transaction, queued after commit), retried with backoff, dead after a
    permanent error, re-queued by the safety net (im.services, ``perform_*`` below)."""
    from im.services import OutboxItem, write_outbox

    step = {Delivery.Kind.GROUP_OPEN: "open", Delivery.Kind.GROUP_POST: f"post:{ref}",
            Delivery.Kind.GROUP_ARCHIVE: "archive"}[kind]
    write_outbox([OutboxItem(dedupe_key=f"group:{group.pk}:{step}", kind=kind, ref=str(ref),
                             topic=f"group.{group.pk}", platform=group.platform, reason=reason)])


def create_group(
    *,
    name: str,
    purpose: str,
    platform: str,
    key: str,
    members: list[tuple[Any, str]],
    externals: list[tuple[str, str, str]] = (),
    subject_topic: str = "",
    customer: str = "",
    rule: NotificationRule | None = None,
    opened_by: Any = None,
) -> ChatGroup:
    """A group row with its members, opened on the platform after commit. Same ``key``, same group."""
    group, created = ChatGroup.objects.get_or_create(
        idempotency_key=key,
        defaults={"name": name[:200], "purpose": purpose, "platform": platform, "subject_topic": subject_topic,
                  "customer": customer, "created_by_rule": rule, "created_by": opened_by},
    )
    if not created:
        return group
    seen = set()
    for user, reason in members:
        if user.pk not in seen:
            seen.add(user.pk)
            ChatGroupMember.objects.create(group=group, user=user, reason=reason[:200])
    for ext_name, email, reason in externals:
        if email:
            ChatGroupMember.objects.create(group=group, external_name=ext_name[:150], external_email=email,
                                           reason=reason[:200])
    _queue(Delivery.Kind.GROUP_OPEN, group, group.pk, reason=group.get_purpose_display())
    return group


def open_war_room(rule: NotificationRule, subject: EventSubject, connector: Any, *, opened_by: Any) -> ChatGroup:
    """The low-stock group: the rule's recipients and role holders who may view the item, the
    supplier's contact as an external member, the live widget pinned, open requisitions attached."""
    existing = ChatGroup.objects.filter(subject_topic=subject.topic, purpose=ChatGroup.Purpose.WAR_ROOM,
                                        state=ChatGroup.State.OPEN).first()
    if existing is not None:
        return existing
    f = subject.facts
    members: list[tuple[Any, str]] = []
    if opened_by is not None:
        members.append((opened_by, _("opened the group")))
    members += [(t.user, t.reason) for t in targets(rule, subject, connector)]
    members += [(u, _("holds the ERP role %s") % role) for u, role in role_holders(connector, rule.group_roles)]
    members = [(u, r) for u, r in members if authorize(u, subject.view_action, subject.obj)]
    externals = []
    if rule.group_supplier_contact and f.get("supplier_email"):
        externals.append((f.get("supplier_contact") or f["supplier_email"], f["supplier_email"],
                          _("contact at the supplier %s") % f.get("supplier", "")))
    with translation.override(settings.LANGUAGE_CODE):
        name = _("Low stock %(sku)s %(name)s @ %(warehouse)s") % {
            "sku": f.get("sku"), "name": f.get("name"), "warehouse": f.get("warehouse_name")}
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    group = create_group(
        name=name, purpose=ChatGroup.Purpose.WAR_ROOM, platform=group_platform(rule),
        key=f"war_room:{subject.topic}:{stamp}", members=members, externals=externals,
        subject_topic=subject.topic, rule=rule, opened_by=opened_by,
    )
    post_card(group, rule, subject, key=f"group{group.pk}:intro")
    if rule.attach_open_orders:
        _attach_open_requisitions(group, subject)
    return group


def _attach_open_requisitions(group: ChatGroup, subject: EventSubject) -> None:
    from approvals.models import ApprovalDocument

    docs = (
        ApprovalDocument.objects.filter(connector=subject.obj.connector, kind="purchase_requisition",
                                        status__in=["pending", "approved"], lines__sku=subject.facts.get("sku"))
        .distinct().order_by("external_id")
    )
    with translation.override(settings.LANGUAGE_CODE):
        card = Card(
            topic=f"group.{group.pk}",
            title=_("Open purchase requisitions of %s") % subject.facts.get("sku"),
            status="info",
            status_label=_("%s open") % docs.count() if docs else _("none open"),
            link="", link_label="", locale=translation.get_language(),
            # No amounts: the group may hold external members (the supplier), who never see prices.
            fields=[CardField(d.external_id, d.status_label) for d in docs],
        )
    _post(group, card, key=f"group{group.pk}:open_orders", reason=_("open purchase requisitions attached"))


def open_review_group(rule: NotificationRule, subject: EventSubject, *, opened_by: Any) -> ChatGroup:
    """"Discuss": the approvers, the requester and who tapped, with a data snippet (the document,
    its history, similar past claims). Only people who may view the document are members."""
    from approvals.models import ApprovalDocument

    document = subject.obj
    existing = ChatGroup.objects.filter(subject_topic=subject.topic, purpose=ChatGroup.Purpose.REVIEW,
                                        state=ChatGroup.State.OPEN).first()
    if existing is not None:
        return existing
    members = [(opened_by, _("asked to discuss"))]
    members += [(a.user, _("approver named by the ERP (%s)") % a.erp_login)
                for a in document.assignments.exclude(user=None).select_related("user")]
    if document.requester is not None:
        members.append((document.requester, _("the requester")))
    members = [(u, r) for u, r in members if authorize(u, "approvals.view", document)]
    with translation.override(settings.LANGUAGE_CODE):
        name = _("Review %(number)s") % {"number": document.external_id}
        group = create_group(
            name=name, purpose=ChatGroup.Purpose.REVIEW, platform=group_platform(rule),
            key=f"review:{subject.topic}:{timezone.now():%Y%m%d%H%M%S%f}", members=members,
            subject_topic=subject.topic, rule=rule, opened_by=opened_by,
        )
        history = [CardField(formatting.moment(h.at), f"{h.actor_name} {h.action_label} {h.note}".strip())
                   for h in document.history.order_by("-at")[:5]]
        similar = (ApprovalDocument.objects.filter(connector=document.connector, kind=document.kind)
                   .exclude(pk=document.pk).order_by("-created_at")[:5])
        card = Card(
            topic=f"group.{group.pk}",
            title=f"{document.external_id}: {document.title}",
            status=document.status,
            status_label=_("Amount %(amount)s, requested by %(requester)s") % {
                "amount": formatting.money(document.amount, document.currency), "requester": document.requester_login},
            link="", link_label="", locale=translation.get_language(),
            fields=[
                *history,
                *[CardField(_("Similar: %s") % d.external_id,
                            f"{formatting.money(d.amount, d.currency)} · {d.status_label}")
                  for d in similar],
            ],
            note=_("History (latest first) and similar earlier documents of the same kind."),
        )
    _post(group, card, key=f"group{group.pk}:snippet", reason=_("data snippet for the review"))
    return group


def group_card(group: ChatGroup, rule: NotificationRule, subject: EventSubject) -> Card:
    """Only the fields the rule shares with groups; no sign-in link (members may be external)."""
    kind = subject.topic.split(".", 1)[0]
    with translation.override(settings.LANGUAGE_CODE):
        f = shown_facts(kind, subject.facts)  # status words and amounts as people read them
        zh = (translation.get_language() or "").startswith("zh")
        title = fill((rule.title_zh if zh else rule.title_en) or rule.title_zh or rule.title_en, f) or (
            _(DEFAULT_TITLES.get(kind, "%(number)s")) % {k: f.get(k, "") for k in
                                                           ("number", "title", "name", "warehouse_name", "status")})
        status, status_label = str(subject.facts.get("status", "")), ""
        if f.get("delayed"):
            status, status_label, title = "delayed", _("Delivery delayed"), "⚠ " + title
        elif f.get("below_safety"):
            status, status_label = "low_stock", _("Below the safety level")
        shared = [name for name in (rule.group_fields or []) if f.get(name) not in (None, "")]
        return Card(
            topic=f"group.{group.pk}", title=title[:200], status=status, status_label=status_label,
            link="", link_label="", locale=translation.get_language(),
            fields=[CardField(_(LABELS.get(n, n)), str(f[n])) for n in shared],
            note=fill((rule.body_zh if zh else rule.body_en) or "", {n: f.get(n, "") for n in shared}),
        )


def post_card(group: ChatGroup, rule: NotificationRule, subject: EventSubject, *, key: str) -> GroupPost | None:
    return _post(group, group_card(group, rule, subject), key=key,
                 reason=_("rule “%(rule)s”: %(group)s") % {"rule": rule.name, "group": group.get_purpose_display()})


def _post(group: ChatGroup, card: Card, *, key: str, reason: str) -> GroupPost | None:
    post, created = GroupPost.objects.get_or_create(
        idempotency_key=key[:200], defaults={"group": group, "card": card.to_dict(), "reason": reason[:200]})
    if created:
        _queue(Delivery.Kind.GROUP_POST, group, post.pk, reason=reason)
    return post if created else None


@transaction.atomic  # its row locks need a transaction; a handler's is joined, a direct call gets its own
def archive_groups_about(subject_topic: str, why: str) -> list[ChatGroup]:
    """The condition cleared (stock back above the safety level): archive its war rooms, keep the
    record until the rule's retention date."""
    archived = []
    for group in ChatGroup.objects.select_for_update().filter(
        subject_topic=subject_topic, purpose=ChatGroup.Purpose.WAR_ROOM, state=ChatGroup.State.OPEN
    ):
        rule = group.created_by_rule
        if rule is not None and not rule.archive_when_cleared:
            continue
        group.state = ChatGroup.State.ARCHIVED
        group.archived_at = timezone.now()
        days = rule.retention_days if rule else 365
        group.retain_until = timezone.localdate() + dt.timedelta(days=days)
        group.save(update_fields=["state", "archived_at", "retain_until"])
        with translation.override(settings.LANGUAGE_CODE):
            card = Card(topic=f"group.{group.pk}", title=_("Group archived"), status="archived", status_label=why,
                        link="", link_label="", locale=translation.get_language())
        _post(group, card, key=f"group{group.pk}:archived", reason=why)
        _queue(Delivery.Kind.GROUP_ARCHIVE, group, group.pk, reason=why)
        archived.append(group)
    return archived


# --- platform side (tasks) ----------------------------------------------------------------------


def external_address(adapter: Any, member: ChatGroupMember) -> str | None:
    if not supports(adapter, EXTERNAL_MEMBERS):
        return None
    try:
        return adapter.external_address(member.external_name, member.external_email)
    except Unsupported:
        return None


def _waiting(kind: str, refs: list[int]) -> QuerySet[Delivery]:
    return Delivery.objects.filter(kind=kind, ref__in=[str(r) for r in refs], status=Delivery.Status.QUEUED)


def _not_open_yet(group: ChatGroup) -> Exception:
    """What a post or an archive of a group without a chat id raises: wait while its opening is
    still in the outbox, else there is nothing to do (the opening is dead: its row says why)."""
    if _waiting(Delivery.Kind.GROUP_OPEN, [group.pk]).exists():
        return Deferred(GROUP_WAIT_SECONDS, "waiting for the group to be opened")
    return Skip(_("the group was never opened on the platform"))


# A post or an archive waiting for its group to open is also woken the moment the group opens.
GROUP_WAIT_SECONDS = 5.0


def perform_open(delivery: Delivery) -> None:
    """Create the chat (idempotent per group), invite, pin the widget; then wake the posts waiting for
    it. A failure raises for the outbox to retry or give up; the group row shows the error too."""
    group = ChatGroup.objects.filter(pk=int(delivery.ref)).first()
    if group is None:
        raise Skip(_("the group is gone"))
    if group.chat_id:
        return  # opened already
    adapter = get_adapter(group.platform)
    members = list(group.members.select_related("user"))
    for member in members:
        member.address = (adapter.address_of(member.user) if member.user else external_address(adapter, member)) or ""
    try:
        chat = adapter.create_group(group.name, [m.address for m in members if m.address],
                                    idempotency_key=f"group:{group.idempotency_key}")
    except (TransportError, Unsupported) as exc:
        ChatGroup.objects.filter(pk=group.pk).update(error=str(exc)[:2000])
        logger.warning("group %s could not be opened on %s: %s", group.pk, group.platform, exc)
        raise
    for member in members:
        member.invited = bool(member.address)
        member.save(update_fields=["address", "invited"])
    ChatGroup.objects.filter(pk=group.pk).update(chat_id=chat.chat_id, error="")
    group.chat_id = chat.chat_id
    rule = group.created_by_rule
    pins = supports(adapter, WIDGETS) and (rule is None or rule.pin_widget)  # a platform without widgets: none
    if group.purpose == ChatGroup.Purpose.WAR_ROOM and pins:
        sku = group.subject_topic and _sku_of(group.subject_topic)
        if sku:
            try:
                # Not a signed embed link: one pinned widget serves every member, and each signs in
                # as themself (external members see nothing there).
                url = f"{settings.PORTAL_BASE_URL}/w/stock/{sku}/"
                adapter.post_widget(group.chat_id, _("Live stock %s") % sku, url)
            except (TransportError, Unsupported) as exc:
                ChatGroup.objects.filter(pk=group.pk).update(error=_("widget not pinned: %s") % exc)
    if group.purpose in (ChatGroup.Purpose.WAR_ROOM, ChatGroup.Purpose.REVIEW) and pins:
        try:
            # The group's live board (boards/): each member opens it as themself, a guest with their pass.
            adapter.post_widget(group.chat_id, _("Board: %s") % group.name, f"{settings.PORTAL_BASE_URL}/g/{group.pk}/")
        except (TransportError, Unsupported) as exc:
            ChatGroup.objects.filter(pk=group.pk).update(error=_("board not pinned: %s") % exc)
    waiting = list(
        (_waiting(Delivery.Kind.GROUP_POST, list(group.posts.values_list("pk", flat=True)))
         | _waiting(Delivery.Kind.GROUP_ARCHIVE, [group.pk])).order_by("pk").values_list("pk", flat=True)
    )
    if waiting:
        from im import tasks

        Delivery.objects.filter(pk__in=waiting).update(next_attempt_at=None)
        queue_after_commit(tasks.send_delivery, waiting)


def _sku_of(topic: str) -> str:
    from inventory.models import StockLevel

    ident = topic.partition(".")[2]
    if not ident.isdigit():
        return ""
    return StockLevel.objects.filter(pk=int(ident)).values_list("sku", flat=True).first() or ""


def perform_post(delivery: Delivery) -> None:
    post = GroupPost.objects.select_related("group").filter(pk=int(delivery.ref)).first()
    if post is None:
        raise Skip(_("the post is gone"))
    if post.message_id:
        return  # sent already
    if not post.group.chat_id:
        raise _not_open_yet(post.group)
    try:
        sent = get_adapter(post.group.platform).send_card_to_chat(
            post.group.chat_id, Card.from_dict(post.card), idempotency_key=post.idempotency_key)
    except (TransportError, Unsupported) as exc:
        GroupPost.objects.filter(pk=post.pk).update(error=str(exc)[:2000])
        raise
    GroupPost.objects.filter(pk=post.pk).update(message_id=sent.message_id, error="")


def perform_archive(delivery: Delivery) -> None:
    group = ChatGroup.objects.filter(pk=int(delivery.ref)).first()
    if group is None:
        raise Skip(_("the group is gone"))
    if not group.chat_id:
        raise _not_open_yet(group)
    if _waiting(Delivery.Kind.GROUP_POST, list(group.posts.values_list("pk", flat=True))).exists():
        raise Deferred(GROUP_WAIT_SECONDS, "the group's posts go first")  # "archived" is the last word
    adapter = get_adapter(group.platform)
    if not supports(adapter, ARCHIVE):
        raise Unsupported(f"{group.platform} cannot archive a group chat")
    try:
        adapter.archive_group(group.chat_id, group.name)
    except (Unsupported, TransportError) as exc:
        ChatGroup.objects.filter(pk=group.pk).update(error=_("not archived on the platform: %s") % exc)
        raise


def register_operations() -> None:
    """The outbox performs group-chat rows with these (notifications/apps.py)."""
    register_operation(Delivery.Kind.GROUP_OPEN, perform_open)
    register_operation(Delivery.Kind.GROUP_POST, perform_post)
    register_operation(Delivery.Kind.GROUP_ARCHIVE, perform_archive)


def member_names(group: ChatGroup) -> list[str]:
    return [display_name(m.user) if m.user else f"{m.external_name} ({_('external')})" for m in group.members.all()]
