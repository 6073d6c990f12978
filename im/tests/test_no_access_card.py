"""The card for someone who may not open what it is about: no data, no link, in their language."""

from __future__ import annotations

from django.utils import translation

from im.cards import no_access_card


def test_a_no_access_card_carries_nothing_and_speaks_the_recipients_language():
    with translation.override("zh-hans"):
        card = no_access_card("approval.7", "有一项申请在等您")
    assert (card.topic, card.title, card.status) == ("approval.7", "有一项申请在等您", "no_access")
    assert card.link == "" and card.fields == [] and card.actions == [] and card.amount == ""
    assert card.status_label == "您在门户中无权查看。请联系管理员开通权限。" and card.locale == "zh-hans"
    with translation.override("en"):
        assert no_access_card("approval.7", "x").status_label.startswith("You may not view it")
