"""The permission reads each process keeps (``sso.snapshot``) never outlive a change made through the portal:
a rule revoked in admin, a group membership removed, ERP roles changed, a delegation ended and a user
deactivated refuse the very next check, here and in another process that kept the old reads; a write no
signal reports is seen within PERMISSION_CACHE_SECONDS; a delegation's end is honoured to the second
without any write; and a second identical check or page reads no permissions at all.

The tests commit (``transaction=True``): the cache is only filled outside a transaction that wrote
permission rows, and the bump that counts is the one after commit. "Another process" is this process
with the reads it kept before the change put back (the shared stamp in the cache is the same)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalDocument
from erp.models import Connector
from sso import permissions, snapshot
from sso.authz import authorize, restrict
from sso.models import Delegation, ErpIdentity, PermissionRule
from sso.permissions import read_once

pytestmark = pytest.mark.django_db(transaction=True)

ACTION = "approvals.view"
PERMISSION_TABLES = ("sso_permissionrule", "auth_user_groups", "sso_erpidentity", "sso_delegation")


@pytest.fixture(autouse=True)
def cache_on(settings):
    settings.PERMISSION_CACHE_SECONDS = 5


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The clock that ages kept reads, frozen until a test moves it (``clock[0] += …``)."""
    now = [1000.0]
    monkeypatch.setattr(snapshot, "_clock", lambda: now[0])
    return now


@pytest.fixture
def world(django_user_model):
    """ann is named in the rule, bob is in its group, carl holds its ERP role, eve is ann's delegate."""
    erp = Connector.objects.create(slug="pc", name="PC", kind="demo", webhook_secret="whsec_dGVzdA==")
    ann, bob, carl, eve = (django_user_model.objects.create_user(name) for name in ("ann", "bob", "carl", "eve"))
    group = Group.objects.create(name="buyers")
    bob.groups.add(group)
    identity = ErpIdentity.objects.create(user=carl, connector=erp, erp_login="carl.e", roles=["approver"])
    rule = PermissionRule.objects.create(name="viewers", actions=[ACTION], erp_roles=["approver"])
    rule.users.add(ann)
    rule.groups.add(group)
    now = timezone.now()
    delegation = Delegation.objects.create(delegator=ann, delegate=eve, actions=[ACTION],
                                           starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=1))
    document = ApprovalDocument.objects.create(
        connector=erp, external_id="PR-PC-1", kind="purchase_requisition", title="t", amount="10", currency="CNY",
        requester_login="x")
    return {"ann": ann, "bob": bob, "carl": carl, "eve": eve, "group": group, "identity": identity, "rule": rule,
            "delegation": delegation, "document": document, "erp": erp}


def may(user, document) -> bool:
    """authorize() and restrict() agree; the verdict."""
    one = authorize(user, ACTION, document).allowed
    listed = restrict(ApprovalDocument.objects.all(), user, ACTION).filter(pk=document.pk).exists()
    assert one == listed, (user, one, listed)
    return one


def permission_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in PERMISSION_TABLES)]


def warmed(user, document) -> dict:
    """Check once (filling this process's copy), prove the next check reads no permission table, and
    return what this process kept: another process that checked before the change."""
    assert may(user, document)
    with CaptureQueriesContext(connection) as queries:
        assert may(user, document)
    assert permission_queries(queries) == []  # the kept reads answered
    return dict(snapshot._entries)


def in_another_process(monkeypatch, kept: dict) -> None:
    """From here on this process is one that kept ``kept`` (read before the change); the stamp is shared."""
    monkeypatch.setattr(snapshot, "_entries", dict(kept))


def save_in_admin(client, django_user_model, rule, **fields) -> None:
    """Save ``rule`` through its admin change form, as an admin does (unticked boxes are left out)."""
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))  # noqa: S106
    response = client.post(f"/admin/sso/permissionrule/{rule.pk}/change/", {
        "name": rule.name, "actions": [ACTION], "erp_roles": "approver", "currency": "CNY", **fields})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_revoking_a_rule_in_admin_refuses_the_next_check_here_and_in_another_process(
        world, client, django_user_model, monkeypatch):
    ann, rule, document = world["ann"], world["rule"], world["document"]
    kept = warmed(ann, document)
    save_in_admin(client, django_user_model, rule, users=[ann.pk], groups=[world["group"].pk])  # not enabled
    assert not PermissionRule.objects.get(pk=rule.pk).enabled
    assert not may(ann, document)
    in_another_process(monkeypatch, kept)
    assert not may(ann, document)
    assert not may(world["bob"], document) and not may(world["carl"], document)


def test_taking_a_user_off_a_rule_in_admin_is_effective_at_once_in_another_process(
        world, client, django_user_model, monkeypatch):
    ann, rule, document = world["ann"], world["rule"], world["document"]
    kept = warmed(ann, document)
    save_in_admin(client, django_user_model, rule, enabled="on", groups=[world["group"].pk])  # ann not named
    in_another_process(monkeypatch, kept)
    assert not may(ann, document)
    assert may(world["bob"], document)  # the rule itself still holds for its group


def remove_from_group(world):
    world["bob"].groups.remove(world["group"])


def change_erp_roles(world):
    identity = world["identity"]
    identity.roles = ["buyer"]
    identity.save()


def end_delegation(world):
    delegation = world["delegation"]
    delegation.ends_at = timezone.now()
    delegation.save()


def deactivate_delegator(world):
    world["ann"].is_active = False
    world["ann"].save()


def delete_group(world):
    world["group"].delete()


@pytest.mark.parametrize("change, who", [
    (remove_from_group, "bob"),
    (change_erp_roles, "carl"),
    (end_delegation, "eve"),
    (deactivate_delegator, "eve"),  # the kept delegation's delegator was active
    (delete_group, "bob"),
])
def test_a_change_through_the_models_is_effective_at_the_next_check_here_and_elsewhere(
        world, monkeypatch, change, who):
    user, document = world[who], world["document"]
    kept = warmed(user, document)
    change(world)
    assert not may(user, document)
    in_another_process(monkeypatch, kept)
    assert not may(user, document)
    with read_once([user]):  # a worker's batch too
        assert not may(user, document)


def test_a_change_inside_a_transaction_is_never_kept_before_it_commits_nor_after_a_rollback(world):
    bob, document = world["bob"], world["document"]
    stranger = world["eve"]
    world["delegation"].delete()
    assert not may(stranger, document)
    with pytest.raises(RuntimeError), transaction.atomic():
        world["rule"].users.add(stranger)
        assert may(stranger, document)  # the writer sees its own change…
        raise RuntimeError("rolled back")
    assert not may(stranger, document)  # …which nobody keeps once it is undone
    assert may(bob, document)


def test_a_read_between_a_write_and_its_commit_is_not_used_after_the_commit(world):
    """Another thread reads while the change is not committed yet: the old rows, under the stamp the
    write already bumped. The bump after the commit is what retires them."""
    ann, document = world["ann"], world["document"]
    seen = []

    def other_request() -> None:
        try:
            seen.append(may(ann, document))
        finally:
            connection.close()

    with transaction.atomic():
        world["rule"].users.remove(ann)
        reader = threading.Thread(target=other_request)
        reader.start()
        reader.join()
        assert seen == [True] and snapshot._entries  # it kept what it read: ann still named
    assert not may(ann, document)


def test_a_queryset_update_is_seen_within_permission_cache_seconds(world, clock, settings):
    carl, document = world["carl"], world["document"]
    warmed(carl, document)
    ErpIdentity.objects.filter(pk=world["identity"].pk).update(roles=[])  # no signal: no bump
    clock[0] += settings.PERMISSION_CACHE_SECONDS - 0.5
    assert may(carl, document)  # the bound is what is promised for writes nobody reports…
    clock[0] += 0.5
    assert not may(carl, document)  # …and it holds


def test_with_permission_cache_seconds_zero_every_check_reads_the_database(world, settings):
    settings.PERMISSION_CACHE_SECONDS = 0
    carl, document = world["carl"], world["document"]
    assert may(carl, document)
    with CaptureQueriesContext(connection) as queries:
        assert may(carl, document)
    assert permission_queries(queries)
    ErpIdentity.objects.filter(pk=world["identity"].pk).update(roles=[])
    assert not may(carl, document) and snapshot._entries == {}


def test_a_delegation_is_honoured_to_the_second_without_a_new_read(world, monkeypatch):
    eve, document, delegation = world["eve"], world["document"], world["delegation"]
    starts = timezone.now() + dt.timedelta(minutes=30)
    later = Delegation.objects.create(delegator=world["bob"], delegate=world["carl"], actions=[ACTION],
                                      starts_at=starts, ends_at=starts + dt.timedelta(minutes=30))
    world["identity"].delete()  # carl may view only through bob's delegation, from ``starts``
    warmed(eve, document)
    assert not may(world["carl"], document)

    def at(moment):
        monkeypatch.setattr(permissions, "_now", lambda: moment)

    with CaptureQueriesContext(connection) as queries:
        at(delegation.ends_at - dt.timedelta(seconds=1))
        assert may(eve, document)
        at(delegation.ends_at)
        assert not may(eve, document)
        with read_once([eve]):
            assert not may(eve, document)
        at(later.starts_at)
        assert may(world["carl"], document)
        with read_once([world["carl"]]):
            assert may(world["carl"], document)
        at(later.ends_at)
        assert not may(world["carl"], document)
    # Decided on the kept delegation rows: none read again (bob's own rules were read once, when carl
    # first acted for him).
    assert not [sql for sql in permission_queries(queries) if "sso_delegation" in sql]


def test_a_lost_stamp_never_revives_what_was_kept(world):
    carl, document = world["carl"], world["document"]
    warmed(carl, document)
    ErpIdentity.objects.filter(pk=world["identity"].pk).update(roles=[])
    cache.delete(snapshot.STAMP_KEY)  # evicted, or the cache flushed
    assert not may(carl, document)


class CacheDown:
    def __getattr__(self, name):
        def down(*args, **kwargs):
            raise ConnectionError("the cache is not reachable")

        return down


def test_with_the_cache_unreachable_checks_read_the_database_and_writes_still_work(world, monkeypatch):
    carl, document = world["carl"], world["document"]
    warmed(carl, document)
    monkeypatch.setattr(snapshot, "cache", CacheDown())
    ErpIdentity.objects.filter(pk=world["identity"].pk).update(roles=[])  # nothing tells the stamp
    assert not may(carl, document)  # the stamp is unknown: nothing kept is used
    identity = ErpIdentity.objects.get(pk=world["identity"].pk)
    identity.roles = ["approver"]
    identity.save()  # its bump fails; the save does not
    assert may(carl, document)


def test_a_second_read_once_reads_no_permissions(world, django_assert_max_num_queries):
    users = [world[name] for name in ("ann", "bob", "carl", "eve")]
    with CaptureQueriesContext(connection) as first, read_once(users):
        pass
    assert len(permission_queries(first)) == 6
    with django_assert_max_num_queries(0), read_once(users):
        assert permissions.Principal.of(world["carl"]).roles == {(world["erp"].pk, "approver")}
        assert [d.pk for d in permissions.active_delegations(world["eve"], ACTION)] == [world["delegation"].pk]


def test_a_second_widget_request_reads_no_permissions(world, client, django_assert_max_num_queries):
    client.force_login(world["ann"])
    path = f"/w/approval/{world['document'].pk}/"
    with CaptureQueriesContext(connection) as first:
        assert client.get(path).status_code == 200
    assert permission_queries(first)
    budget = len(first) - len(permission_queries(first))
    with CaptureQueriesContext(connection) as second, django_assert_max_num_queries(budget):
        assert client.get(path).status_code == 200
    assert permission_queries(second) == []


def test_notification_rules_and_delegations_by_delegator_are_kept_until_a_change(world, django_user_model):
    """The hot path's other configuration reads (notifications.engine): the enabled rules of an event type
    and an approver's delegations are kept per process under the same stamp; a rule switched off in admin
    (a save) and a delegation ended count at the next event."""
    from notifications.engine import rules_for_event
    from notifications.models import NotificationRule

    ann = django_user_model.objects.get(username="ann")
    rule = NotificationRule.objects.create(name="big", event_type="erp.test.kept", min_amount="100")
    assert [r.pk for r in rules_for_event("erp.test.kept")] == [rule.pk]
    with CaptureQueriesContext(connection) as queries:
        again = rules_for_event("erp.test.kept")
        delegations = snapshot.delegations_from([ann.pk])
        assert snapshot.delegations_from([ann.pk]) == delegations
    assert [r.pk for r in again] == [rule.pk] and again[0] is not rules_for_event("erp.test.kept")[0]
    assert not [q for q in queries.captured_queries if "notifications_notificationrule" in q["sql"]]
    assert len([q for q in queries.captured_queries if "sso_delegation" in q["sql"]]) == 1
    assert [d.delegate.username for d in delegations[ann.pk]] == ["eve"]

    rule.enabled = False
    rule.save()
    assert rules_for_event("erp.test.kept") == []
    delegation = Delegation.objects.get(delegator=ann)
    delegation.ends_at = timezone.now() - dt.timedelta(seconds=1)
    delegation.save()
    assert snapshot.delegations_from([ann.pk]) == {ann.pk: ()}


def test_who_holds_an_erp_login_is_kept_until_an_identity_or_the_user_changes_and_each_caller_gets_copies(
        world, monkeypatch):
    from sso.selectors import identities_for_logins

    erp, carl = world["erp"], world["carl"]
    first = identities_for_logins(erp, ["carl.e", "nobody"])
    assert first == {"carl.e": (carl, "")}
    with CaptureQueriesContext(connection) as queries:
        again = identities_for_logins(erp, ["carl.e", "nobody"])  # a login nobody holds is kept too
    assert permission_queries(queries) == [] and again == first
    again["carl.e"][0].note = "one caller's"
    assert again["carl.e"][0] is not first["carl.e"][0] and not hasattr(first["carl.e"][0], "note")
    kept = dict(snapshot._entries)

    identity = world["identity"]
    identity.department = "采购部"
    identity.save()  # the ERP sync moved carl: seen at once, here and in a process that kept the old read
    assert identities_for_logins(erp, ["carl.e"]) == {"carl.e": (carl, "采购部")}
    in_another_process(monkeypatch, kept)
    assert identities_for_logins(erp, ["carl.e"])["carl.e"][1] == "采购部"

    carl.is_active = False
    carl.save()
    assert identities_for_logins(erp, ["carl.e"]) == {"carl.e": (None, "采购部")}
    ErpIdentity.objects.create(user=world["ann"], connector=erp, erp_login="nobody")
    assert identities_for_logins(erp, ["nobody"]) == {"nobody": (world["ann"], "")}


def test_where_a_users_cards_go_is_kept_until_an_im_identity_is_saved_or_deleted(world, monkeypatch):
    from im.platforms.base import identities_read_once, linked_external_id
    from sso.models import ImIdentity

    ann = world["ann"]
    identity = ImIdentity.objects.create(user=ann, platform="webhook", external_id="ann@old")
    with identities_read_once([ann], ["webhook"]):
        assert linked_external_id(ann, "webhook") == "ann@old"
    kept = dict(snapshot._entries)
    with CaptureQueriesContext(connection) as queries, identities_read_once([ann], ["webhook"]):
        assert linked_external_id(ann, "webhook") == "ann@old"
    assert not [q for q in queries.captured_queries if "sso_imidentity" in q["sql"]]

    identity.external_id = "ann@new"
    identity.save()  # relinked: the next batch sends to the new account, here and in another process
    in_another_process(monkeypatch, kept)
    with identities_read_once([ann], ["webhook"]):
        assert linked_external_id(ann, "webhook") == "ann@new"
    identity.delete()
    with identities_read_once([ann], ["webhook"]):
        assert linked_external_id(ann, "webhook") is None
