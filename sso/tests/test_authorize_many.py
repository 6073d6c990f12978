"""``authorize_many`` (the batch form, set-based through ``restrict()``) gives ``authorize()``'s verdict for
every pair of users × objects: over the constraint matrix of test_constraints_both_ways, through a user,
a group, an ERP role and a delegation, for the decide policy's own rules (named approver, own request,
an earlier step, not pending), with and without ``read_once``; and its queries do not grow with users."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalAssignment, Decision
from sso import authz
from sso.authz import authorize, authorize_many
from sso.models import Delegation, ErpIdentity, PermissionRule
from sso.permissions import read_once

from . import test_constraints_both_ways as matrix

CASES = matrix.CASES
world = matrix.world  # the same fixture: the same users, connector and object makers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def set_based_always(monkeypatch):
    """These tests compare the set-based statement with authorize(): never the pairwise shortcut for
    small sets, which is authorize() itself (``test_small_sets_are_decided_pair_by_pair``)."""
    monkeypatch.setattr(authz, "PAIRWISE_UP_TO", 0)


def agree(users, action, objects) -> set[tuple[int, int]]:
    """Both forms, with and without ``read_once``, give the same pairs; returns them."""
    one_by_one = {(u.pk, o.pk) for u in users for o in objects if u.pk is not None and authorize(u, action, o)}
    assert authorize_many(users, action, objects) == one_by_one, action
    with read_once(users):
        assert authorize_many(users, action, objects) == one_by_one, action
        assert {(u.pk, o.pk) for u in users for o in objects if u.pk is not None and authorize(u, action, o)} \
            == one_by_one
    return one_by_one


@pytest.fixture
def people(world, django_user_model):
    erp, ann, bob, *_ = world
    group = Group.objects.create(name="buyers")
    carl = django_user_model.objects.create_user("carl")
    carl.groups.add(group)
    dave = django_user_model.objects.create_user("dave")
    ErpIdentity.objects.create(user=dave, connector=erp, erp_login="dave.e", roles=["buyer"], department="财务部")
    eve = django_user_model.objects.create_user("eve")  # ann's delegate
    now = timezone.now()
    Delegation.objects.create(delegator=ann, delegate=eve, actions=["approvals.view", "approvals.decide"],
                              starts_at=now - dt.timedelta(days=1), ends_at=now + dt.timedelta(days=1))
    gone = django_user_model.objects.create_user("gone", is_active=False)
    return {"ann": ann, "bob": bob, "carl": carl, "dave": dave, "eve": eve, "gone": gone, "group": group}


@pytest.mark.parametrize("constraint, meets, misses", CASES)
def test_the_batch_form_agrees_with_authorize_over_the_constraint_matrix(world, people, constraint, meets, misses):
    erp, ann, bob, document, stock, order = world
    by_user = PermissionRule.objects.create(name="u", actions=["approvals.view"], **constraint)
    by_user.users.add(ann)
    PermissionRule.objects.create(name="g", actions=["approvals.view"], **constraint).groups.add(people["group"])
    PermissionRule.objects.create(name="r", actions=["approvals.view"], erp_roles=["buyer"], **constraint)
    documents = [document(**meets), document(**misses), document(**meets, requester=bob)]
    users = [people[name] for name in ("ann", "bob", "carl", "dave", "eve", "gone")] + [AnonymousUser()]
    allowed = agree(users, "approvals.view", documents)
    assert (ann.pk, documents[0].pk) in allowed and (ann.pk, documents[1].pk) not in allowed
    assert (people["eve"].pk, documents[0].pk) in allowed  # through ann's delegation
    assert not any(pk == bob.pk for pk, _ in allowed)  # no rule is bob's


def test_the_batch_form_agrees_on_stock_and_orders(world, people):
    erp, ann, bob, document, stock, order = world
    rule = PermissionRule.objects.create(name="w", actions=["inventory.view"], warehouses=["SH"])
    rule.users.add(ann)
    PermissionRule.objects.create(name="o", actions=["orders.view"], own_documents=True).users.add(ann)
    users = [ann, bob, people["eve"]]
    assert agree(users, "inventory.view", [stock("SH"), stock("BJ")])
    assert agree(users, "orders.view", [order(sales_rep_login="ann.e"), order(sales_rep_login="x")])
    assert agree(users, "no.such.action", [stock("SH")]) == set()


def test_the_batch_form_refuses_two_models_at_once(world, people):
    """Its pairs name no model: a stock row and a document with the same pk must not stand for each other."""
    erp, ann, bob, document, stock, order = world
    with pytest.raises(ValueError):
        authorize_many([ann], "inventory.view", [stock("SH"), document()])


def test_the_batch_form_agrees_with_the_decide_policy(world, people):
    erp, ann, bob, document, stock, order = world
    carl, dave = people["carl"], people["dave"]
    rule = PermissionRule.objects.create(name="d", actions=["approvals.decide", "approvals.view"],
                                         max_amount=Decimal("500"), currency="CNY")
    rule.users.add(ann, bob, carl)
    waiting, over_limit, own, decided, second_step = (
        document(), document(amount=Decimal("900")), document(requester=ann), document(status="approved"),
        document(step=2),
    )
    for doc in (waiting, over_limit, own, decided, second_step):
        for user in (ann, bob, dave):
            ApprovalAssignment.objects.create(document=doc, erp_login=user.username, user=user)
    Decision.objects.create(document=second_step, step=1, actor=bob, outcome="approved", idempotency_key="k1")
    users = [ann, bob, carl, dave, people["eve"], people["gone"]]
    allowed = agree(users, "approvals.decide", [waiting, over_limit, own, decided, second_step])
    assert (ann.pk, waiting.pk) in allowed and (bob.pk, waiting.pk) in allowed
    assert (ann.pk, own.pk) not in allowed and (bob.pk, second_step.pk) not in allowed
    assert (carl.pk, waiting.pk) not in allowed  # a rule, but not a named approver
    assert (people["eve"].pk, waiting.pk) in allowed  # ann's delegate
    assert not any(pk in (over_limit.pk, decided.pk) for _, pk in allowed)


def test_the_batch_form_costs_the_same_queries_for_2_and_20_users(world, django_user_model):
    erp, ann, bob, document, stock, order = world
    rule = PermissionRule.objects.create(name="v", actions=["approvals.view"], own_department=True)
    users = []
    for i in range(20):
        user = django_user_model.objects.create_user(f"u{i}")
        ErpIdentity.objects.create(user=user, connector=erp, erp_login=f"u{i}.e", department="采购部")
        rule.users.add(user)
        users.append(user)
    documents = [document() for _ in range(10)]
    counts = []
    for some in (users[:2], users):
        with CaptureQueriesContext(connection) as queries, read_once(some):
            allowed = authorize_many(some, "approvals.view", documents)
        assert len(allowed) == len(some) * len(documents)
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1] <= 8, counts


def test_small_sets_are_decided_pair_by_pair_without_the_statement(world, monkeypatch):
    """Up to PAIRWISE_UP_TO pairs, authorize_many() is authorize() pair by pair: the same verdicts,
    and no restrict() statement is built."""
    erp, ann, bob, document, stock, order = world
    monkeypatch.setattr(authz, "PAIRWISE_UP_TO", 4)
    PermissionRule.objects.create(name="v", actions=["approvals.view"], own_department=True).users.add(ann)
    documents = [document(), document(department="财务部")]
    expected = {(u.pk, d.pk) for u in (ann, bob) for d in documents if authorize(u, "approvals.view", d)}
    assert expected == {(ann.pk, documents[0].pk)}
    built = []
    monkeypatch.setattr(authz, "restrict", lambda *args: built.append(args))
    assert authorize_many([ann, bob], "approvals.view", documents) == expected
    assert built == []


def test_the_pairs_asked_for_are_decided_alone_pair_by_pair(world, people, monkeypatch):
    """A batch of cards asks for each recipient with their own document: 6 people × 6 documents is 36
    pairs, more than PAIRWISE_UP_TO, but the 6 asked for are decided pair by pair with authorize()'s
    verdicts, and nothing is said of the pairs not asked for."""
    erp, ann, bob, document, stock, order = world
    monkeypatch.setattr(authz, "PAIRWISE_UP_TO", 8)
    PermissionRule.objects.create(name="v", actions=["approvals.view"], own_department=True).users.add(
        ann, people["carl"], people["dave"])
    users = [people[name] for name in ("ann", "bob", "carl", "dave", "eve", "gone")]
    documents = [document(department="财务部" if i % 2 else "采购部") for i in range(6)]
    asked = list(zip(users, documents, strict=True))
    expected = {(u.pk, d.pk) for u, d in asked if authorize(u, "approvals.view", d)}
    assert expected and len(expected) < len(asked)  # some allowed, some refused
    built = []
    restrict = authz.restrict
    monkeypatch.setattr(authz, "restrict", lambda *args: built.append(args) or restrict(*args))
    assert authorize_many(users, "approvals.view", documents, asked=asked) == expected
    assert built == []
    # More pairs asked for than PAIRWISE_UP_TO: the statement, whose answer covers the pairs asked for.
    many = [(u, d) for u in users for d in documents]
    assert {pair for pair in authorize_many(users, "approvals.view", documents, asked=many)} == {
        (u.pk, d.pk) for u, d in many if authorize(u, "approvals.view", d)}
    assert built
