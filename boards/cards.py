"""The card a claim's requester gets when a reviewer asks them something from the review board
(topic ``boardq.<activity>``): the requester is often not in the review group (they may not see the
review), so the question reaches them directly, through the outbox like every card."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from boards.models import BoardActivity
from im.cards import Card, CardField
from sso.models import language_of


def build(topic: str, recipient: Any) -> Card | None:
    ident = topic.partition(".")[2]
    activity = BoardActivity.objects.select_related("group").filter(
        pk=int(ident) if ident.isdigit() else 0, action="ask_requester").first()
    if activity is None:
        return None
    from boards.selectors import claim_subject

    document = claim_subject(activity.group)
    if document is None or document.requester_id != recipient.pk:
        return None  # only the claim's requester gets this card
    with translation.override(language_of(recipient)):
        return Card(
            topic=topic, title=_("%(asker)s asks about your claim %(ref)s") % {
                "asker": activity.actor_name, "ref": document.external_id},
            status="question", status_label=_("Please answer the reviewer."), link="", link_label="",
            locale=translation.get_language(), fields=[CardField(document.external_id, activity.detail)],
        )


def send_to_requester(activity: BoardActivity, requester: Any, platform: str) -> None:
    from im import tasks
    from im.models import Delivery
    from portal.tasks import queue_after_commit

    delivery, created = Delivery.objects.get_or_create(
        dedupe_key=f"boardq:{activity.pk}:{requester.pk}:{platform}",
        defaults={"topic": f"boardq.{activity.pk}", "recipient": requester, "platform": platform,
                  "reason": "question from the review board"},
    )
    if created:
        queue_after_commit(tasks.send_delivery, delivery.pk)
