"""Every rule constraint gives the same answer on one object (grant(), the Python form) and on the list
(granted_queryset(), the query form): each is tested both ways, on objects that meet it and that miss it.
(Before, only two of the constraints were.)"""

from decimal import Decimal

import pytest

from approvals.models import ApprovalAssignment, ApprovalDocument
from erp.models import Connector
from inventory.models import SalesOrder, StockLevel
from sso.models import ErpIdentity, PermissionRule
from sso.permissions import grant, granted_queryset


@pytest.fixture
def world(db, django_user_model):
    erp = Connector.objects.create(slug="bw", name="BW", kind="demo", webhook_secret="whsec_dGVzdA==")
    ann = django_user_model.objects.create_user("ann")
    bob = django_user_model.objects.create_user("bob")
    ErpIdentity.objects.create(user=ann, connector=erp, erp_login="ann.e", department="采购部")
    n = iter(range(1000))

    def document(**fields):
        values = {"connector": erp, "external_id": f"PR-{next(n)}", "kind": "pr", "title": "t",
                  "amount": Decimal("100"), "currency": "CNY", "project": "A", "cost_center": "CC-1",
                  "department": "采购部", "requester_login": "x", **fields}
        return ApprovalDocument.objects.create(**values)

    def stock(warehouse):
        return StockLevel.objects.create(connector=erp, sku=f"S{next(n)}", name="n", warehouse=warehouse, quantity=1)

    def order(**fields):
        return SalesOrder.objects.create(connector=erp, external_id=f"SO{next(n)}", status="open",
                                         **{"customer": "华东", "amount": Decimal("5"), **fields})

    return erp, ann, bob, document, stock, order


def both_ways(user, action, obj):
    one = grant(user, action, obj).allowed
    listed = granted_queryset(type(obj).objects.all(), user, action).filter(pk=obj.pk).exists()
    assert one == listed, (action, obj, one, listed)
    return one


def rule_for(user, action, **constraints):
    rule = PermissionRule.objects.create(name="r", actions=[action], **constraints)
    rule.users.add(user)
    return rule


CASES = [  # constraint, object fields that meet it, object fields that miss it
    ({"max_amount": Decimal("500"), "currency": "CNY"}, {"amount": Decimal("500")}, {"amount": Decimal("500.01")}),
    ({"max_amount": Decimal("500"), "currency": "CNY"}, {"currency": "CNY"}, {"currency": "USD"}),
    ({"max_amount": Decimal("500"), "currency": ""}, {"currency": "USD"}, {"amount": Decimal("9999")}),
    ({"projects": ["A", "B"]}, {"project": "B"}, {"project": "C"}),
    ({"projects": ["A"]}, {"project": "A"}, {"project": ""}),
    ({"cost_centers": ["CC-1"]}, {"cost_center": "CC-1"}, {"cost_center": "CC-2"}),
    ({"own_department": True}, {"department": "采购部"}, {"department": "财务部"}),
]


@pytest.mark.parametrize("constraint, meets, misses", CASES)
def test_document_constraints_answer_the_same_both_ways(world, constraint, meets, misses):
    erp, ann, bob, document, stock, order = world
    rule_for(ann, "approvals.view", **constraint)
    assert both_ways(ann, "approvals.view", document(**meets)) is True
    assert both_ways(ann, "approvals.view", document(**misses)) is False
    assert both_ways(bob, "approvals.view", document(**meets)) is False  # the rule is not bob's


def test_own_documents_both_ways(world):
    erp, ann, bob, document, stock, order = world
    rule_for(ann, "approvals.view", own_documents=True)
    assert both_ways(ann, "approvals.view", document(requester=ann)) is True
    assigned = document()
    ApprovalAssignment.objects.create(document=assigned, erp_login="ann.e", user=ann)
    assert both_ways(ann, "approvals.view", assigned) is True
    assert both_ways(ann, "approvals.view", document(requester=bob)) is False


def test_warehouse_and_customer_constraints_both_ways(world):
    erp, ann, bob, document, stock, order = world
    rule_for(ann, "inventory.view", warehouses=["SH"])
    assert both_ways(ann, "inventory.view", stock("SH")) is True
    assert both_ways(ann, "inventory.view", stock("BJ")) is False
    rule_for(ann, "orders.view", customers=["华东"])
    assert both_ways(ann, "orders.view", order()) is True
    assert both_ways(ann, "orders.view", order(customer="华南")) is False


def test_a_constraint_the_model_cannot_answer_refuses_both_ways(world):
    """Stock levels carry no amount: an amount limit refuses them (fail closed), one by one and listed."""
    erp, ann, bob, document, stock, order = world
    rule_for(ann, "inventory.view", max_amount=Decimal("10"))
    assert both_ways(ann, "inventory.view", stock("SH")) is False


def test_own_sales_orders_both_ways(world):
    erp, ann, bob, document, stock, order = world
    rule_for(ann, "orders.view", own_documents=True)
    assert both_ways(ann, "orders.view", order(sales_rep_login="ann.e")) is True
    assert both_ways(ann, "orders.view", order(sales_rep_login="someone")) is False
