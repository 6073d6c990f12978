"""``Card.to_dict`` is ``dataclasses.asdict`` without its deep copy: the same dict, and a copy of the card."""

from __future__ import annotations

from dataclasses import asdict

from im.cards import Card, CardAction, CardField


def test_to_dict_is_what_asdict_gives_and_does_not_share_the_cards_lists():
    card = Card(topic="approval.7", title="采购申请 PR-7", status="pending", status_label="待审批", link="https://x/7",
                link_label="打开", locale="zh-hans", amount="¥12,800.00",
                fields=[CardField("金额", "¥12,800.00"), CardField("项目", "P-1")],
                actions=[CardAction("approve", "批准", "primary", confirm="批准?"), CardAction("reject", "拒绝")],
                note="n")
    data = card.to_dict()
    assert data == asdict(card)
    assert list(data) == list(asdict(card))  # the same keys in the same order (the stored JSON reads alike)
    data["fields"][0]["value"] = "changed"
    data["actions"].append({"id": "x"})
    assert card.fields[0].value == "¥12,800.00" and len(card.actions) == 2
    assert Card.from_dict(card.to_dict()) == card
    assert Card(topic="t", title="", status="", status_label="", link="", link_label="", locale="en").to_dict() == {
        **asdict(Card(topic="t", title="", status="", status_label="", link="", link_label="", locale="en"))}
