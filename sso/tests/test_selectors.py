"""ERP-identity lookups, once, in sso.selectors (they were copied into approvals, notifications, foresight,
finance, inventory and the bot)."""

import pytest

from erp.models import Connector
from sso.models import ErpIdentity
from sso.selectors import department_of, erp_logins, identity_of, role_holders, user_for_login, users_for_login


@pytest.fixture
def people(db, django_user_model):
    erp = Connector.objects.create(slug="e1", name="E1", kind="demo", webhook_secret="whsec_dGVzdA==")
    other = Connector.objects.create(slug="e2", name="E2", kind="demo", webhook_secret="whsec_dGVzdA==")
    ann = django_user_model.objects.create_user("ann")
    bob = django_user_model.objects.create_user("bob")
    gone = django_user_model.objects.create_user("gone", is_active=False)
    ErpIdentity.objects.create(user=ann, connector=erp, erp_login="ann.e", roles=["buyer", "approver"],
                               department="采购部")
    ErpIdentity.objects.create(user=ann, connector=other, erp_login="ann.other")
    ErpIdentity.objects.create(user=bob, connector=erp, erp_login="bob.e", roles=["approver"])
    ErpIdentity.objects.create(user=gone, connector=erp, erp_login="gone.e", roles=["buyer"])
    return erp, other, ann, bob


def test_lookups(people):
    erp, other, ann, bob = people
    assert sorted(erp_logins(ann)) == ["ann.e", "ann.other"]
    assert user_for_login(erp, "bob.e") == bob
    assert user_for_login(erp, "gone.e") is None and user_for_login(other, "bob.e") is None
    assert users_for_login(erp, "ann.e") == [ann] and users_for_login(erp, "") == []
    assert department_of(erp, "ann.e") == "采购部" and department_of(erp, "nobody") == ""
    assert identity_of(other, ann).erp_login == "ann.other" and identity_of(other, bob) is None


def test_role_holders_are_active_users_with_their_first_matching_role(people):
    erp, other, ann, bob = people
    assert role_holders(erp, ["approver", "buyer"]) == [(ann, "approver"), (bob, "approver")]
    assert role_holders(erp, ["buyer"]) == [(ann, "buyer")]  # the inactive holder is left out
    assert role_holders(other, ["buyer"]) == []
