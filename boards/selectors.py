"""What a board shows, for one viewer. Members see through their own rules (``restrict()`` /
``authorize()``, via the apps' selectors); a guest sees only what the group's rule shares
(``group_fields``), only about the group's own item, and only the purchase order lines of their own
supplier, quantities and dates: never prices, never another supplier."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from boards.access import Viewer
from boards.models import BoardActivity, BoardPresence
from erp.connectors.base import CONFIRM_DELIVERY, EXPEDITE_ORDER, PURCHASE_ORDERS, PurchaseOrderLine, supports
from notifications.cards import LABELS
from notifications.models import ChatGroup, GroupPost
from sso.authz import authorize, restrict

# Guests see these of a purchase order line (their own supplier's), whatever else the line holds.
GUEST_LINE_FIELDS = ("order", "name", "warehouse_name", "qty", "promised_date", "confirmed_date", "confirmed_qty")
# Kinds of board actions, and which side may ever take them (the rule then chooses among these).
MEMBER_ACTIONS = ("confirm_delivery", "expedite", "raise_requisition", "ask_requester", "decide_claim")
GUEST_ACTIONS = ("confirm_delivery",)


def topic_of(group: ChatGroup) -> str:
    return f"board.{group.pk}"


def subject_kind(group: ChatGroup) -> str:
    return group.subject_topic.partition(".")[0]


def stock_subject(group: ChatGroup):
    from inventory.models import StockLevel

    kind, _sep, ident = group.subject_topic.partition(".")
    if kind != "stock" or not ident.isdigit():
        return None
    return StockLevel.objects.select_related("connector").filter(pk=int(ident)).first()


def claim_subject(group: ChatGroup):
    from approvals.models import ApprovalDocument

    kind, _sep, ident = group.subject_topic.partition(".")
    if kind != "approval" or not ident.isdigit():
        return None
    return ApprovalDocument.objects.select_related("connector").filter(pk=int(ident)).first()


def erp_of(connector_row: Any):
    from erp.connectors import get_connector

    return get_connector(connector_row.kind, connector_row)


def allowed_actions(viewer: Viewer, group: ChatGroup) -> set[str]:
    """What the rule lets this side do on this board (each action still asks permission itself)."""
    rule = group.created_by_rule
    if rule is None or group.state != ChatGroup.State.OPEN:
        return set()
    if viewer.is_guest:
        return set(rule.guest_actions or ()) & set(GUEST_ACTIONS)
    return set(rule.member_actions or ()) & set(MEMBER_ACTIONS)


@dataclass
class SharedField:
    label: str
    value: str


@dataclass
class StockRow:
    warehouse: str
    warehouse_name: str
    quantity: Any
    reserved: Any
    available: Any
    safety_level: Any
    below_safety: bool
    forecast_4w: float | None = None


@dataclass
class Board:
    group: ChatGroup
    viewer: Viewer
    topic: str
    kind: str
    sku: str = ""
    item_name: str = ""
    unit: str = ""
    stock: list[StockRow] = field(default_factory=list)
    shared: list[SharedField] = field(default_factory=list)  # a guest's view of the subject
    requisitions: list[Any] = field(default_factory=list)
    suggestion: Any = None
    lines: list[PurchaseOrderLine] = field(default_factory=list)
    lines_note: str = ""
    show_prices: bool = False
    claim: Any = None
    claim_score: Any = None
    history: list[Any] = field(default_factory=list)
    posts: list[dict] = field(default_factory=list)
    activity: list[BoardActivity] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    actions: set[str] = field(default_factory=set)


def board_for(viewer: Viewer, group: ChatGroup, part: str = "") -> Board:
    """The board as ``viewer`` sees it; ``part`` "stock" or "body" computes only that partial (each
    is refetched on its own topic, so a push costs one partial, not the whole board)."""
    board = Board(group=group, viewer=viewer, topic=topic_of(group), kind=subject_kind(group),
                  actions=allowed_actions(viewer, group))
    if board.kind == "stock":
        _stock_board(board, part)
    elif board.kind == "approval" and not viewer.is_guest:
        _claim_board(board)
    if part == "stock":
        return board
    board.posts = [p.card for p in GroupPost.objects.filter(group=group).order_by("created_at", "pk") if p.card]
    board.activity = list(BoardActivity.objects.filter(group=group, outcome=BoardActivity.Outcome.DONE)[:20])
    board.present = sorted({p.viewer_name for p in BoardPresence.objects.filter(group=group)})
    return board


def _stock_board(board: Board, part: str = "") -> None:
    level = stock_subject(board.group)
    if level is None:
        return
    board.sku, board.item_name, board.unit = level.sku, level.name, level.unit
    viewer = board.viewer
    if viewer.is_guest:
        rule = board.group.created_by_rule
        from inventory.subjects import stock_facts

        facts = stock_facts(level)
        board.shared = [SharedField(_(LABELS.get(name, name)), str(facts[name]))
                        for name in (rule.group_fields if rule else []) if facts.get(name) not in (None, "")]
    else:
        from foresight.models import SeriesForecast
        from inventory.selectors import stock_of_item

        if part == "body":
            levels = [] if not stock_of_item(viewer.user, level.sku).exists() else [level]
        else:
            levels = list(stock_of_item(viewer.user, level.sku))
        forecasts = {} if part == "body" else {
            f.warehouse: f for f in SeriesForecast.objects.filter(connector=level.connector, sku=level.sku)}
        board.stock = [] if part == "body" else [StockRow(
            warehouse=lv.warehouse, warehouse_name=lv.warehouse_name or lv.warehouse, quantity=lv.quantity.normalize(),
            reserved=lv.reserved.normalize(), available=lv.available.normalize(),
            safety_level=lv.safety_level.normalize(), below_safety=lv.below_safety,
            forecast_4w=round(sum(forecasts[lv.warehouse].forecast[:4]), 1) if lv.warehouse in forecasts else None,
        ) for lv in levels]
        if not levels:
            return  # may not view the item: none of its requisitions, orders or suggestions either
        if part != "body":
            # Requisitions and the suggestion sit with the stock (refetched on item.<sku>), not in the
            # body: a push to the board (a post, a confirmation, someone joining) then costs one
            # permission-filtered query instead of three.
            from approvals.models import ApprovalDocument
            from foresight.models import RestockSuggestion

            board.requisitions = list(restrict(
                ApprovalDocument.objects.filter(connector=level.connector, kind="purchase_requisition",
                                                status__in=["pending", "approved"], lines__sku=level.sku),
                viewer.user, "approvals.view").distinct().order_by("external_id"))
            board.suggestion = restrict(
                RestockSuggestion.objects.filter(connector=level.connector, sku=level.sku,
                                                 warehouse=level.warehouse, status=RestockSuggestion.Status.OPEN),
                viewer.user, "inventory.view").first()
        if part == "stock":
            return
        board.show_prices = True
    erp = erp_of(level.connector)
    if not supports(erp, PURCHASE_ORDERS):
        board.lines_note = _("This ERP does not tell the portal about purchase orders.")
        return
    if viewer.is_guest:
        board.lines = erp.purchase_order_lines(sku=level.sku, supplier_email=viewer.guest.email)
    else:
        board.lines = erp.purchase_order_lines(sku=level.sku)
    if not supports(erp, CONFIRM_DELIVERY):
        board.actions.discard("confirm_delivery")
    if not supports(erp, EXPEDITE_ORDER):
        board.actions.discard("expedite")


def _claim_board(board: Board) -> None:
    document = claim_subject(board.group)
    user = board.viewer.user
    if document is None or not authorize(user, "approvals.view", document):
        return
    from approvals.models import ApprovalDocument
    from foresight.models import ExpenseScore

    board.claim = document
    board.claim_score = ExpenseScore.objects.filter(document=document).first()
    board.history = list(restrict(
        ApprovalDocument.objects.filter(connector=document.connector, kind=document.kind,
                                        requester_login=document.requester_login).exclude(pk=document.pk),
        user, "approvals.view").order_by("-created_at")[:8])


def board_topics(group_id: int) -> frozenset[str]:
    """The live topics a board shows: the board's own and its subject's (for embed tokens)."""
    group = ChatGroup.objects.filter(pk=group_id).first()
    if group is None:
        return frozenset()
    topics = {topic_of(group)}
    level = stock_subject(group)
    if level is not None:
        topics.add(f"item.{level.sku}")
    return frozenset(topics)
