"""The subject registry: apps register what their events and topics are about; generic code asks it."""

from types import SimpleNamespace

from erp import subjects
from erp.subjects import EventSubject, money, quantity, subject_for_topic, subject_kinds, subject_of


def test_the_domain_apps_register_their_kinds():
    kinds = subject_kinds()
    assert {"approval", "stock", "order", "receivable"} <= set(kinds)
    assert kinds["approval"].handles("erp.approval.requested") and kinds["approval"].handles("erp.approval.decided")
    assert kinds["stock"].handles("erp.stock.changed") and not kinds["stock"].handles("erp.stock.changed.more")


def test_lookups_dispatch_through_the_registry_and_unknown_is_none():
    seen = []
    subject = EventSubject("widget.3", object(), "widgets.view", {"n": 1})
    subjects.register_subject_kind(
        "widget", event_types=("erp.widget.moved",),
        from_event=lambda event: seen.append(event.type) or subject, from_id=lambda pk: seen.append(pk) or subject,
    )
    try:
        assert subject_of(SimpleNamespace(type="erp.widget.moved", data={})) is subject
        assert subject_for_topic("widget.3") is subject
        assert seen == ["erp.widget.moved", 3]
        assert subject_of(SimpleNamespace(type="erp.unknown.thing", data={})) is None
        assert subject_for_topic("widget.x") is None and subject_for_topic("nothing.3") is None
    finally:
        subjects._KINDS.pop("widget")


def test_an_object_in_hand_is_not_read_again_unless_it_is_another_one():
    read, held_subjects = [], []
    subjects.register_subject_kind(
        "widget", event_types=(), from_event=lambda event: None,
        from_id=lambda pk: read.append(pk) or EventSubject(f"widget.{pk}", None, "widgets.view", {}),
        from_object=lambda obj: held_subjects.append(obj) or EventSubject(f"widget.{obj.pk}", obj, "widgets.view", {}),
    )
    try:
        held = SimpleNamespace(pk=3)
        assert subject_for_topic("widget.3", held).obj is held and read == []
        assert subject_for_topic("widget.4", held).obj is None and read == [4]  # not the topic's object
        assert subject_for_topic("widget.5").obj is None and read == [4, 5] and held_subjects == [held]
    finally:
        subjects._KINDS.pop("widget")


def test_formatting_helpers():
    assert money(1234.5) == "1,234.50" and money(None) == ""
    assert quantity("10.000") == "10" and quantity("2.50") == "2.5" and quantity(7) == "7"


def test_status_labels_come_from_the_kind_that_owns_them():
    from django.utils import translation

    from erp.subjects import status_label

    with translation.override("en"):
        assert status_label("approval", "pending") != "pending"
        assert status_label("order", "shipped") == "Shipped"
    assert status_label("stock", "anything") == "anything" and status_label("nothing", "x") == "x"
