"""Notification rules (edited in admin), what they sent, and the group chats they opened."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

EVENT_TYPES = [
    ("erp.approval.requested", "erp.approval.requested"),
    ("erp.approval.decided", "erp.approval.decided"),
    ("erp.stock.changed", "erp.stock.changed"),
    ("erp.order.status_changed", "erp.order.status_changed"),
    ("erp.receivable.changed", "erp.receivable.changed"),
]


class NotificationRule(models.Model):
    """On an ERP event (with conditions on its data) tell these people, this way, and follow up."""

    class Priority(models.TextChoices):
        HIGH = "high", _("high")
        NORMAL = "normal", _("normal")
        LOW = "low", _("low (may be sent as a digest)")

    class GroupMode(models.TextChoices):
        NONE = "", _("no group chat")
        BUTTON = "button", _("a button on the card opens one")
        AUTO = "auto", _("open one at once")

    name = models.CharField(_("name"), max_length=150)
    enabled = models.BooleanField(_("enabled"), default=True)
    event_type = models.CharField(_("event type"), max_length=100, choices=EVENT_TYPES, db_index=True)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    description = models.TextField(_("description"), blank=True)

    # --- conditions on the event's data (all must hold; empty means "any") ---
    min_amount = models.DecimalField(_("amount over"), max_digits=16, decimal_places=2, null=True, blank=True)
    unusual_factor = models.DecimalField(
        _("amount over this many times the usual"), max_digits=6, decimal_places=2, null=True, blank=True,
        help_text=_("e.g. 1.5: more than 1.5 × the average of earlier documents of the same kind"),
    )
    kinds = models.JSONField(_("document kinds"), default=list, blank=True,
                             help_text=_("e.g. purchase_requisition, expense_claim"))
    statuses = models.JSONField(_("statuses / outcomes"), default=list, blank=True,
                                help_text=_("order statuses (shipped, delayed…) or decisions (approved, rejected)"))
    warehouses = models.JSONField(_("warehouses"), default=list, blank=True)
    projects = models.JSONField(_("projects"), default=list, blank=True)
    customers = models.JSONField(_("customers"), default=list, blank=True)
    urgent_only = models.BooleanField(_("urgent only"), default=False)
    below_safety_only = models.BooleanField(
        _("stock below its safety level"), default=False,
        help_text=_("fires once when an item falls below; again only after it was back above"),
    )
    delayed_only = models.BooleanField(_("delayed orders only"), default=False)

    # --- recipients (each filtered through authorize()) ---
    to_approvers = models.BooleanField(_("the approvers the ERP named"), default=False)
    erp_roles = models.JSONField(_("holders of ERP roles"), default=list, blank=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="notification_rules",
                                   verbose_name=_("named users"))
    to_owner = models.BooleanField(_("the document's owner / requester"), default=False)
    to_sales_rep = models.BooleanField(_("the customer's sales rep"), default=False)
    chat_group = models.ForeignKey("ChatGroup", on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("a chat group"))
    to_customer_group = models.BooleanField(_("the customer's sales group"), default=False)
    notice_without_access = models.BooleanField(
        _("tell recipients who may not view it that something is waiting (no data)"), default=False)
    platforms = models.JSONField(_("platforms"), default=list, blank=True, help_text=_("empty: all enabled"))
    initial_card = models.BooleanField(
        _("send a card at the event"), default=True,
        help_text=_("off: only follow-ups (reminders, escalation) for what another card already announced"))

    # --- the card ---
    title_zh = models.CharField(_("title (zh-Hans)"), max_length=200, blank=True,
                                help_text=_("placeholders such as {number} {title} {amount} {sku} {status}"))
    title_en = models.CharField(_("title (en)"), max_length=200, blank=True)
    body_zh = models.TextField(_("text (zh-Hans)"), blank=True)
    body_en = models.TextField(_("text (en)"), blank=True)
    fields = models.JSONField(_("fields shown"), default=list, blank=True,
                              help_text=_("empty: the event type's usual fields"))
    group_fields = models.JSONField(_("fields shared with a group"), default=list, blank=True,
                                    help_text=_("what external members of a group see; nothing else is posted"))
    discuss_action = models.BooleanField(_("'discuss' button: opens a review group"), default=False)

    # --- group chat (low-stock war room) ---
    group_mode = models.CharField(_("group chat"), max_length=10, choices=GroupMode.choices, blank=True, default="")
    group_roles = models.JSONField(_("group members: ERP roles"), default=list, blank=True)
    group_supplier_contact = models.BooleanField(_("invite the supplier's contact (external)"), default=False)
    pin_widget = models.BooleanField(_("pin the live widget"), default=True)
    attach_open_orders = models.BooleanField(_("attach open purchase requisitions of the item"), default=True)
    archive_when_cleared = models.BooleanField(_("archive the group when the condition clears"), default=True)
    retention_days = models.PositiveIntegerField(_("keep archived groups' records (days)"), default=365)
    # --- the group's board (boards/): which actions each side may take there, and the guests' passes ---
    member_actions = models.JSONField(
        _("board actions of members"), default=list, blank=True,
        help_text=_("confirm_delivery, expedite, raise_requisition, ask_requester, decide_claim; "
                    "each still needs the member's own permission"))
    guest_actions = models.JSONField(
        _("board actions of external guests"), default=list, blank=True,
        help_text=_("supplier actions only: confirm_delivery"))
    guest_pass_hours = models.PositiveIntegerField(
        _("guest passes last (hours)"), default=72,
        help_text=_("an invited supplier's pass to the group's board; archiving the group revokes it earlier"))

    # --- follow-ups ---
    remind_after_hours = models.PositiveIntegerField(_("remind after (hours)"), null=True, blank=True)
    escalate_after_hours = models.PositiveIntegerField(_("escalate after (hours)"), null=True, blank=True)
    escalate_to_roles = models.JSONField(_("escalate to ERP roles"), default=list, blank=True)
    escalate_to_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+",
                                               verbose_name=_("escalate to users"))
    quiet_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    working_days = models.JSONField(_("working days"), default=list, blank=True,
                                    help_text=_("0 = Monday … 6 = Sunday; empty: every day"))
    digest = models.BooleanField(_("digest instead of one card each"), default=False)
    digest_minutes = models.PositiveIntegerField(_("digest every (minutes)"), default=60)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("notification rule")
        verbose_name_plural = _("notification rules")
        ordering = ["event_type", "name"]

    def __str__(self) -> str:
        return self.name


class Notification(models.Model):
    """One thing one person was (or will be) told because of one rule: the "why" of a card."""

    class Kind(models.TextChoices):
        EVENT = "event", _("event")
        REMINDER = "reminder", _("reminder")
        ESCALATION = "escalation", _("escalation")
        DIGEST = "digest", _("digest")

    class Status(models.TextChoices):
        QUEUED = "queued", _("card queued")
        HELD = "held", _("held for quiet hours")
        IN_DIGEST = "in_digest", _("waiting for the digest")
        DIGESTED = "digested", _("sent in a digest")
        TRACKING = "tracking", _("no card; follow-ups only")
        SKIPPED = "skipped", _("not sent: may not view")

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.EVENT)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    event_type = models.CharField(max_length=100)
    event_id = models.CharField(max_length=200)
    subject_topic = models.CharField(_("about"), max_length=100, db_index=True)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    reason = models.CharField(_("why this person"), max_length=200)
    facts = models.JSONField(_("event data as the rule saw it"), default=dict)
    digest = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="items")
    send_at = models.DateTimeField(null=True, blank=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    followed_up = models.JSONField(default=list, blank=True, help_text=_("reminder / escalation done"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "kind", "event_id", "recipient"], name="notification_once"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} → {self.recipient} ({self.subject_topic})"

    @property
    def topic(self) -> str:
        return f"notice.{self.pk}"


class RuleState(models.Model):
    """Edge-triggered conditions ("below safety level"): fire once, again only after it cleared."""

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="+")
    subject_topic = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "subject_topic"], name="rule_state_once")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.subject_topic} {'active' if self.active else 'clear'}"


class ChatGroup(models.Model):
    """A group chat on one IM platform: a customer's sales group, a war room, a review group."""

    class Purpose(models.TextChoices):
        SALES = "sales", _("customer's sales group")
        WAR_ROOM = "war_room", _("low-stock war room")
        REVIEW = "review", _("review / discussion")
        OTHER = "other", _("other")

    class State(models.TextChoices):
        OPEN = "open", _("open")
        ARCHIVED = "archived", _("archived")

    platform = models.CharField(_("platform"), max_length=30)
    chat_id = models.CharField(_("chat id on the platform"), max_length=255, blank=True)
    name = models.CharField(_("name"), max_length=200)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.OTHER)
    subject_topic = models.CharField(_("about"), max_length=100, blank=True, db_index=True)
    customer = models.CharField(_("customer"), max_length=200, blank=True, db_index=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    created_by_rule = models.ForeignKey(NotificationRule, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="groups", verbose_name=_("created by rule"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", verbose_name=_("opened by"))
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    retain_until = models.DateField(_("keep the record until"), null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("group chat")
        verbose_name_plural = _("group chats")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"


class ChatGroupMember(models.Model):
    group = models.ForeignKey(ChatGroup, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="+")
    external_name = models.CharField(_("external contact"), max_length=150, blank=True)
    external_email = models.EmailField(_("external email"), blank=True)
    address = models.CharField(_("address on the platform"), max_length=255, blank=True)
    reason = models.CharField(_("why a member"), max_length=200, blank=True)
    invited = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("group member")
        verbose_name_plural = _("group members")

    def __str__(self) -> str:
        return str(self.user or f"{self.external_name} <{self.external_email}>")

    @property
    def external(self) -> bool:
        return self.user_id is None


class GroupPost(models.Model):
    """A card, text or widget posted into a group, once (idempotency key)."""

    group = models.ForeignKey(ChatGroup, on_delete=models.CASCADE, related_name="posts")
    idempotency_key = models.CharField(max_length=200, unique=True)
    reason = models.CharField(_("why"), max_length=200, blank=True)
    card = models.JSONField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("group post")
        verbose_name_plural = _("group posts")
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.group}: {(self.card or {}).get('title', '')}"
