"""Permissions come from admin-edited rules mapped from ERP roles, groups and users, and one
``authorize()``/``restrict()`` answers for every route. Receiving a card never grants access."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone, translation
from rest_framework.test import APIClient

from approvals import selectors, services
from approvals.models import ApprovalDocument, Decision
from erp.connectors.demo.models import DemoUser
from im.models import Delivery
from inventory.models import StockLevel
from sso.authz import authorize, restrict
from sso.models import AccessChange, Delegation, ErpIdentity, PermissionRule
from sso.services import sync_erp_identities

from .conftest import approval_requested

pytestmark = pytest.mark.django_db

PR = "PR-2026-0042"  # 12,800 CNY, requested by zhang.san (采购部), approver li.si (采购经理)


@pytest.fixture
def document(demo) -> ApprovalDocument:
    return ApprovalDocument.objects.get(external_id=PR)


@pytest.fixture
def request_for(send_event):
    """A new waiting request with these approvers and document fields; returns the portal document."""

    def make(doc_id: str, approvers: list[str], **fields) -> ApprovalDocument:
        response = send_event("erp.approval.requested", approval_requested(doc_id, approvers, **fields))
        assert response.status_code == 202, response.content
        return ApprovalDocument.objects.get(external_id=doc_id)

    return make


# --- rules and constraints -------------------------------------------------------------------


def test_the_demo_mapping_grants_by_erp_role(users, document):
    assert authorize(users["li.si"], "approvals.decide", document)  # 采购经理, named, ≤ 50,000 CNY
    assert authorize(users["zhang.san"], "approvals.view", document)  # own request
    assert not authorize(users["zhang.san"], "approvals.decide", document)
    assert authorize(users["wang.wu"], "approvals.view", document)  # 财务经理 sees up to 200,000
    assert not authorize(users["wang.wu"], "approvals.decide", document)  # …but the ERP did not name him
    with translation.override("en"):
        refused = authorize(users["chen.qi"], "approvals.view", document)
    assert not refused and "no rule grants approvals.view" in refused.reason


def test_an_amount_over_the_limit_can_be_seen_but_not_decided(users, request_for):
    big = request_for("PR-2026-0900", ["li.si"], amount="80000.00")
    assert authorize(users["li.si"], "approvals.view", big)  # own department
    with translation.override("en"):
        verdict = authorize(users["li.si"], "approvals.decide", big)
    assert not verdict
    assert any("80000.00 is over 50000.00" in step for step in verdict.chain), verdict.chain
    with pytest.raises(services.DecisionError) as refused:
        services.decide(users["li.si"], big.pk, "approved", idempotency_key="over-limit")
    assert refused.value.status == 403
    assert not Decision.objects.filter(document=big).exists()


def test_the_limit_is_per_currency(users, request_for):
    dollars = request_for("PR-2026-0901", ["li.si"], amount="100.00", currency="USD")
    with translation.override("en"):
        verdict = authorize(users["li.si"], "approvals.decide", dollars)
    assert not verdict and any("currency USD is not CNY" in step for step in verdict.chain)
    # …and in Chinese, the language the explain page speaks by default.
    assert any("币种 USD 不是 CNY" in step for step in authorize(users["li.si"], "approvals.decide", dollars).chain)


def test_project_constraint_and_restricted_lists_agree(users, request_for):
    for rule in PermissionRule.objects.filter(name__startswith="采购经理"):  # saved, as in admin
        rule.projects, rule.own_department = ["项目B"], False
        rule.save()
    in_a = request_for("PR-2026-0902", ["li.si"], project="项目A")
    in_b = request_for("PR-2026-0903", ["li.si"], project="项目B")
    li = users["li.si"]
    assert not authorize(li, "approvals.view", in_a) and authorize(li, "approvals.view", in_b)
    assert set(selectors.visible_documents(li).filter(pk__in=[in_a.pk, in_b.pk])) == {in_b}
    assert in_b in selectors.pending_for(li) and in_a not in selectors.pending_for(li)


def test_document_kind_constraint_one_object_and_list_agree(users, request_for):
    claim = request_for("EC-2026-0900", ["wang.wu"], kind="expense_claim", amount="3000.00", requester="chen.qi")
    order = request_for("PO-2026-0900", ["li.si"], kind="purchase_order", amount="3000.00")
    requisition = request_for("PR-2026-0904", ["li.si"], amount="3000.00")
    li, keeper = users["li.si"], users["zhao.liu"]
    # 李四's amount rule names purchasing kinds: no expense claim through "≤ 50,000".
    with translation.override("en"):
        refused = authorize(li, "approvals.view", claim)
    assert not refused
    assert any("document kind expense_claim is not in purchase_requisition, purchase_order" in step
               for step in refused.chain), refused.chain
    with translation.override("zh-hans"):
        assert any("单据类型 expense_claim 不在" in step for step in authorize(li, "approvals.view", claim).chain)
    assert not authorize(li, "approvals.decide", claim)
    assert authorize(li, "approvals.view", order) and authorize(li, "approvals.decide", requisition)
    assert set(selectors.visible_documents(li).filter(pk__in=[claim.pk, order.pk, requisition.pk])) == {
        order, requisition}
    # The warehouse keeper reads requisitions only (the scenarios' "prepare goods" rule).
    from notifications.demo import setup_notifications_demo

    setup_notifications_demo(demo_connector())
    assert authorize(keeper, "approvals.view", requisition)
    assert not authorize(keeper, "approvals.view", claim) and not authorize(keeper, "approvals.view", order)
    assert set(selectors.visible_documents(keeper).filter(pk__in=[claim.pk, order.pk, requisition.pk])) == {
        requisition}
    # 王五 (finance) reads every spending kind, and decides the claim he was named for.
    assert authorize(users["wang.wu"], "approvals.decide", claim)


def test_a_kind_constraint_refuses_objects_that_have_no_kind(users, demo):
    rule = PermissionRule.objects.create(name="stock of requisitions", actions=["inventory.view"],
                                         document_kinds=["purchase_requisition"])
    rule.users.add(users["chen.qi"])
    level = StockLevel.objects.filter(sku="SKU-123").first()
    with translation.override("en"):
        verdict = authorize(users["chen.qi"], "inventory.view", level)
    assert not verdict and any("document kind cannot be checked" in step for step in verdict.chain)
    assert not restrict(StockLevel.objects.all(), users["chen.qi"], "inventory.view").exists()


def test_amount_limits_compare_the_magnitude(users, request_for):
    credit = request_for("CN-2026-0900", ["li.si"], kind="credit_note", amount="-99999999.00")
    small_credit = request_for("CN-2026-0901", ["li.si"], kind="credit_note", amount="-100.00")
    rule = PermissionRule.objects.create(name="any kind ≤ 50,000", actions=["approvals.view"],
                                         max_amount=Decimal("50000"), currency="CNY")
    rule.users.add(users["chen.qi"])
    chen = users["chen.qi"]
    with translation.override("en"):
        refused = authorize(chen, "approvals.view", credit)
    assert not refused and any("-99999999.00 is over 50000.00" in step for step in refused.chain), refused.chain
    assert authorize(chen, "approvals.view", small_credit)
    assert set(selectors.visible_documents(chen).filter(pk__in=[credit.pk, small_credit.pk])) == {small_credit}


@pytest.mark.parametrize("kind", ["purchase_requisition", "expense_claim", "purchase_order", "payment_request",
                                  "some_new_kind"])
def test_the_intake_refuses_negative_amounts_for_kinds_without_credits(send_event, kind):
    response = send_event("erp.approval.requested", approval_requested("PR-2026-0950", kind=kind,
                                                                       amount="-99999999.00"))
    assert response.status_code == 400 and response["Content-Type"].startswith("application/problem+json")
    assert "must not be negative" in response.json()["detail"]
    assert not ApprovalDocument.objects.filter(external_id="PR-2026-0950").exists()


def test_the_intake_keeps_negative_amounts_of_credit_kinds(send_event):
    response = send_event("erp.approval.requested", approval_requested("CN-2026-0950", kind="credit_note",
                                                                       amount="-120.00"))
    assert response.status_code == 202, response.content
    assert ApprovalDocument.objects.get(external_id="CN-2026-0950").amount == Decimal("-120.00")


def test_demo_rules_seeded_before_kinds_are_narrowed_once(users):
    import importlib

    from django.apps import apps as global_apps

    narrow = importlib.import_module("sso.migrations.0008_narrow_demo_rules_by_kind").narrow
    manager = PermissionRule.objects.get(name__startswith="采购经理: 审批")
    PermissionRule.objects.filter(pk=manager.pk).update(document_kinds=[])  # as an old demo seeded it
    custom = PermissionRule.objects.create(name="采购经理: 本部门 / Purchase managers: own department (mine)",
                                           actions=["approvals.view"])
    narrow(global_apps, None)
    manager.refresh_from_db()
    custom.refresh_from_db()
    assert manager.document_kinds == ["purchase_requisition", "purchase_order"]
    assert custom.document_kinds == []  # an admin's own rule is left alone
    recorded = AccessChange.objects.filter(model="sso.PermissionRule", object_id=str(manager.pk)).latest("pk")
    assert recorded.after == {"document_kinds": ["purchase_requisition", "purchase_order"]}


def test_a_rule_can_be_granted_to_a_group_or_a_user(users, document):
    chen = users["chen.qi"]
    auditors = Group.objects.create(name="内审 / Internal audit")
    rule = PermissionRule.objects.create(name="内审只读", actions=["approvals.view"])
    rule.groups.add(auditors)
    assert not authorize(chen, "approvals.view", document)
    chen.groups.add(auditors)
    assert authorize(chen, "approvals.view", document)
    chen.groups.remove(auditors)
    rule.users.add(chen)
    assert authorize(chen, "approvals.view", document)
    rule.enabled = False
    rule.save()
    assert not authorize(chen, "approvals.view", document)


def demo_connector():
    from erp.models import Connector

    return Connector.objects.get(slug="demo")


def test_warehouse_constraint_restricts_stock(users, demo):
    keeper = users["zhao.liu"]
    for warehouse in ("WH-SH", "WH-SZ"):
        StockLevel.objects.create(connector=demo_connector(), sku="SKU-123", name="伺服电机", warehouse=warehouse,
                                  quantity=Decimal("5"))
    warehouses = ["WH-SH", "WH-SZ"]
    rule = PermissionRule.objects.get(name__startswith="库存查看")
    rule.warehouses = warehouses[:1]
    rule.save()
    visible = restrict(StockLevel.objects.all(), keeper, "inventory.view")
    assert visible.exists()
    assert set(visible.values_list("warehouse", flat=True)) == set(warehouses[:1])
    other = StockLevel.objects.exclude(warehouse=warehouses[0]).first()
    assert not authorize(keeper, "inventory.view", other)
    assert not restrict(StockLevel.objects.all(), users["chen.qi"], "inventory.view").exists()


def test_a_revoked_erp_role_stops_access_at_the_next_check(client, users, document):
    client.force_login(users["li.si"])
    assert client.get(document.get_absolute_url()).status_code == 200
    DemoUser.objects.filter(login="li.si").update(roles=[])
    report = sync_erp_identities(document.connector)
    assert "li.si" in report.updated and ErpIdentity.objects.get(erp_login="li.si").roles == []
    # Same session, next request: no longer visible, and the title does not leak.
    page = client.get(document.get_absolute_url())
    assert page.status_code == 404 and "伺服电机" not in page.content.decode()
    with pytest.raises(services.NotFoundOrForbidden):
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="revoked")


def test_identity_sync_links_creates_and_updates(demo, connector):
    DemoUser.objects.create(login="sun.ba", name="孙八", roles=["buyer"], department="采购部",
                            email="sun.ba@example.cn")
    DemoUser.objects.filter(login="wang.wu").update(roles=["finance_manager", "purchase_manager"])
    report = sync_erp_identities(connector)
    assert report.created == ["sun.ba"] and report.updated == ["wang.wu"]
    new = ErpIdentity.objects.get(connector=connector, erp_login="sun.ba")
    assert new.roles == ["buyer"] and new.department == "采购部" and not new.user.has_usable_password()
    assert ErpIdentity.objects.get(erp_login="wang.wu").roles == ["finance_manager", "purchase_manager"]
    again = sync_erp_identities(connector)
    assert again.created == again.updated == again.deactivated == []


# --- delegation and separation of duties ----------------------------------------------------


def delegate(frm, to, *, days: float = 1, starts: float = -0.01, actions=("approvals.view", "approvals.decide")):
    now = timezone.now()
    return Delegation.objects.create(
        delegator=frm, delegate=to, actions=list(actions),
        starts_at=now + dt.timedelta(days=starts), ends_at=now + dt.timedelta(days=days), reason="出差 / travelling",
    )


def test_a_delegate_decides_in_the_approvers_name_and_both_are_recorded(users, document, committed):
    chen, li = users["chen.qi"], users["li.si"]
    assert document not in selectors.pending_for(chen)
    delegate(li, chen)
    assert document in selectors.pending_for(chen)
    verdict = authorize(chen, "approvals.decide", document)
    assert verdict and verdict.acting_for == li
    with committed():
        decision = services.decide(chen, document.pk, "approved", idempotency_key="delegated").decision
    assert decision.actor == chen and decision.on_behalf_of == li and decision.actor_erp_login == "li.si"
    document.refresh_from_db()
    assert "陈七" in document.decided_by_name and "李四" in document.decided_by_name


def test_an_expired_or_future_delegation_grants_nothing(users, document):
    delegate(users["li.si"], users["chen.qi"], starts=-3, days=-1)
    delegate(users["li.si"], users["chen.qi"], starts=1, days=2)
    assert not authorize(users["chen.qi"], "approvals.decide", document)
    assert document not in selectors.pending_for(users["chen.qi"])


def test_nobody_approves_their_own_request_even_as_a_delegate(users, document):
    from django.utils import translation

    delegate(users["li.si"], users["zhang.san"])  # zhang.san requested PR-2026-0042
    with translation.override("en"):
        refused = authorize(users["zhang.san"], "approvals.decide", document)
    assert not refused and "own request" in refused.reason
    assert document not in selectors.pending_for(users["zhang.san"])


# --- card routing ----------------------------------------------------------------------------


def test_a_named_approver_without_view_rights_gets_a_notice_without_data(users, request_for, settings):
    from im.cards import build_card

    doc = request_for("PR-2026-0904", ["chen.qi"], title="机密采购", amount="999.00")
    card = build_card(doc.topic, users["chen.qi"])
    assert card is not None and card.actions == [] and card.link == "" and card.amount == ""
    assert "机密采购" not in str(card.to_dict()) and "999" not in str(card.to_dict())
    settings.APPROVAL_CARD_NOTICE_WITHOUT_ACCESS = False
    assert build_card(doc.topic, users["chen.qi"]) is None
    delivery = Delivery.objects.get(topic=doc.topic, recipient=users["chen.qi"])
    assert "机密采购" not in str(delivery.card)


# --- IDOR: every route that takes an id -------------------------------------------------------


def test_every_route_refuses_someone_elses_document_like_a_missing_one(client, users, document):
    chen = users["chen.qi"]
    client.force_login(chen)
    missing = document.pk + 1000
    for path in ("/approvals/{}/", "/approvals/{}/panel/"):
        for pk in (document.pk, missing):
            response = client.get(path.format(pk))
            assert response.status_code == 404, path
            assert "伺服电机" not in response.content.decode() and PR not in response.content.decode()
    posted = client.post(f"/approvals/{document.pk}/decide/", {"outcome": "approved", "idempotency_key": "x"})
    assert posted.status_code == 404 and "伺服电机" not in posted.content.decode()

    api = APIClient()
    api.force_authenticate(chen)
    for pk in (document.pk, missing):
        detail = api.get(f"/api/approvals/{pk}/")
        decided = api.post(f"/api/approvals/{pk}/decision", {"outcome": "approved"}, format="json",
                           HTTP_IDEMPOTENCY_KEY=f"idor-{pk}")
        assert detail.status_code == decided.status_code == 404
        assert "伺服电机" not in detail.content.decode() + decided.content.decode()
    assert not Decision.objects.exists()


def test_a_card_button_pressed_by_someone_who_may_not_decide_is_refused(users, document):
    """A forwarded card (or a group chat) lets others press its buttons: the platform tells us who
    pressed, and that person's permissions decide."""
    from im.platforms.devinbox.adapter import PLATFORM
    from im.platforms.devinbox.models import DevInboxMessage
    from im.services import handle_card_action

    message = DevInboxMessage.objects.get(recipient=users["li.si"], card__topic=document.topic)
    for presser in ("chen.qi", "zhang.san", "wang.wu"):
        answer = handle_card_action(PLATFORM, str(message.pk), users[presser], "approve")
        assert "伺服电机" not in answer
    assert not Decision.objects.filter(document=document).exists()
    handle_card_action(PLATFORM, str(message.pk), users["li.si"], "approve")
    assert Decision.objects.get(document=document).actor == users["li.si"]


# --- explain and audit ----------------------------------------------------------------------


@pytest.fixture
def admin_client(client, demo):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="admin"))
    return client


def test_explain_says_why_someone_cannot_approve(admin_client, users, document):
    url = "/admin/sso/permissionrule/explain/"
    refused = admin_client.get(url, {"user": users["wang.wu"].pk, "action": "approvals.decide",
                                     "kind": "approvals.approvaldocument", "identifier": PR})
    html = refused.content.decode()
    assert refused.status_code == 200 and "Refused" in html or "拒绝" in html
    assert "wang.wu is not an approver" in html or "不是" in html

    allowed = admin_client.get(url, {"user": users["li.si"].pk, "action": "approvals.decide",
                                     "kind": "approvals.approvaldocument", "identifier": str(document.pk)})
    assert "采购经理: 审批" in allowed.content.decode()
    claim = ApprovalDocument.objects.get(external_id="EC-2026-0107")
    with translation.override("en"):
        kind_refused = admin_client.get(url, {"user": users["li.si"].pk, "action": "approvals.view",
                                              "kind": "approvals.approvaldocument", "identifier": claim.external_id},
                                        HTTP_ACCEPT_LANGUAGE="en")
    assert kind_refused.context["verdict"] is not None and not kind_refused.context["verdict"].allowed
    assert any("expense_claim is not in purchase_requisition" in step or "单据类型 expense_claim" in step
               for step in kind_refused.context["verdict"].chain), kind_refused.context["verdict"].chain
    unknown = admin_client.get(url, {"user": users["li.si"].pk, "action": "approvals.decide",
                                     "kind": "approvals.approvaldocument", "identifier": "PR-0000"})
    assert unknown.status_code == 200 and unknown.context["verdict"] is None


def test_explain_is_for_staff_only(client, users):
    client.force_login(users["li.si"])
    assert client.get("/admin/sso/permissionrule/explain/").status_code == 302


def test_changes_to_rules_delegations_and_links_are_audited(admin_client, users, connector):
    AccessChange.objects.all().delete()
    response = admin_client.post("/admin/sso/permissionrule/add/", {
        "name": "项目B 采购经理", "enabled": "on", "actions": ["approvals.view"], "connector": connector.pk,
        "erp_roles": "purchase_manager，buyer", "currency": "CNY", "max_amount": "1000", "projects": "项目B",
        "document_kinds": ["purchase_requisition", "payment_request"],
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = PermissionRule.objects.get(name="项目B 采购经理")
    assert rule.erp_roles == ["purchase_manager", "buyer"] and rule.max_amount == Decimal("1000")
    assert rule.document_kinds == ["purchase_requisition", "payment_request"]
    created = AccessChange.objects.get(model="sso.PermissionRule", change="created")
    assert created.actor_name == "admin" and created.after["projects"] == ["项目B"]
    assert created.after["document_kinds"] == ["purchase_requisition", "payment_request"]
    rule.document_kinds = ["purchase_requisition"]
    rule.save()
    narrowed = AccessChange.objects.filter(model="sso.PermissionRule", change="updated").latest("pk")
    assert narrowed.before["document_kinds"] == ["purchase_requisition", "payment_request"]
    assert narrowed.after["document_kinds"] == ["purchase_requisition"]

    rule.max_amount = Decimal("2000")
    rule.save()
    updated = AccessChange.objects.filter(model="sso.PermissionRule", change="updated").latest("pk")
    assert Decimal(updated.before["max_amount"]) == 1000 and Decimal(updated.after["max_amount"]) == 2000
    assert updated.actor_name == "system"  # not inside a request

    rule.users.add(users["chen.qi"])
    m2m = AccessChange.objects.filter(model="sso.PermissionRule").latest("pk")
    assert m2m.after == {"add": [users["chen.qi"].pk]}

    delegation = delegate(users["li.si"], users["chen.qi"])
    delegation.delete()
    assert list(AccessChange.objects.filter(model="sso.Delegation").values_list("change", flat=True)) == [
        "deleted", "created"]

    identity = ErpIdentity.objects.get(erp_login="chen.qi")
    identity.roles = ["sales", "buyer"]
    identity.save()
    change = AccessChange.objects.filter(model="sso.ErpIdentity").latest("pk")
    assert change.before["roles"] == ["sales"] and change.after["roles"] == ["sales", "buyer"]


def test_audit_records_cannot_be_edited_in_admin(admin_client, users, document):
    PermissionRule.objects.create(name="x", actions=["approvals.view"])
    change = AccessChange.objects.latest("pk")
    assert admin_client.post(f"/admin/sso/accesschange/{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AccessChange.objects.filter(pk=change.pk).exists()


def test_state_changes_need_a_csrf_token_with_session_auth(users, document):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(users["li.si"])
    page = browser.post(f"/approvals/{document.pk}/decide/", {"outcome": "approved", "idempotency_key": "csrf-1"})
    api = browser.post(f"/api/approvals/{document.pk}/decision", {"outcome": "approved"},
                       content_type="application/json", headers={"Idempotency-Key": "csrf-2"})
    card = browser.post("/dev/inbox/message/1/action/approve/")
    assert page.status_code == api.status_code == card.status_code == 403
    assert not Decision.objects.filter(document=document).exists()


def test_one_person_takes_one_step_of_a_multi_step_approval(users, document, send_event, committed):
    """Step 1 approved by li.si; the ERP asks again for step 2 naming li.si and wang.wu: li.si may
    not decide it (not even as wang.wu's delegate), wang.wu may."""
    from django.utils import translation

    with committed():
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="step-1")
    data = approval_requested(PR, ["li.si", "wang.wu"])
    data["step"] = 2
    assert send_event("erp.approval.requested", data).status_code == 202
    document.refresh_from_db()
    assert (document.step, document.status) == (2, "pending")

    with translation.override("en"):
        refused = authorize(users["li.si"], "approvals.decide", document)
    assert not refused and "earlier step" in refused.reason
    assert document not in selectors.pending_for(users["li.si"])
    delegate(users["wang.wu"], users["li.si"])
    assert not authorize(users["li.si"], "approvals.decide", document)
    with pytest.raises(services.DecisionError):
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="step-2-li")

    assert document in selectors.pending_for(users["wang.wu"])
    with committed():
        second = services.decide(users["wang.wu"], document.pk, "approved", idempotency_key="step-2").decision
    assert second.step == 2
    assert list(document.decisions.order_by("step").values_list("step", "actor__username")) == [
        (1, "li.si"), (2, "wang.wu")]


def test_an_earlier_step_asked_again_is_ignored(users, document, send_event, committed):
    data = approval_requested(PR, ["li.si"])
    data["step"] = 2
    with committed():
        services.decide(users["li.si"], document.pk, "approved", idempotency_key="s1")
    assert send_event("erp.approval.requested", data).status_code == 202
    data["step"] = 1
    assert send_event("erp.approval.requested", data).status_code == 202
    document.refresh_from_db()
    assert document.step == 2 and document.history.filter(action="ignored").exists()
