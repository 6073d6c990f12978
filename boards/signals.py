"""Boards follow their groups: external members get a guest pass, removed members and archived
groups lose it, every post reaches open boards at once, and a group that opens takes the
"open a group chat" button off the cards about its subject."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone

from boards import guests
from boards.models import BoardActivity, GuestPass
from notifications.models import ChatGroup, ChatGroupMember, GroupPost, Notification
from widgets.live import publish
from widgets.topics import version_of


def _touch(group_id: int) -> None:
    publish(f"board.{group_id}", version_of(timezone.now()))


@receiver(post_save, sender=ChatGroupMember, dispatch_uid="boards.invite_external")
def invite_external(sender, instance: ChatGroupMember, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and instance.user_id is None and instance.external_email:
        guests.invite(instance)


@receiver(pre_delete, sender=ChatGroupMember, dispatch_uid="boards.revoke_removed")
def revoke_removed(sender, instance: ChatGroupMember, **kwargs) -> None:
    if instance.user_id is None and instance.external_email:
        revoked = guests.revoke(GuestPass.objects.filter(group_id=instance.group_id,
                                                         email__iexact=instance.external_email),
                                "removed from the group")
        if revoked:
            _touch(instance.group_id)


@receiver(post_save, sender=ChatGroup, dispatch_uid="boards.follow_group")
def follow_group(sender, instance: ChatGroup, created: bool, raw: bool = False, **kwargs) -> None:
    if raw:
        return
    if instance.state == ChatGroup.State.ARCHIVED:
        guests.revoke(instance.guest_passes.all(), "group archived")
        _touch(instance.pk)
    if created and instance.subject_topic:
        # The cards about this subject offered "open a group chat": edit them, now that one is open.
        from im.services import refresh_cards

        topics = {f"notice.{pk}" for pk in Notification.objects.filter(
            subject_topic=instance.subject_topic).values_list("pk", flat=True)}
        transaction.on_commit(lambda: [refresh_cards(topic) for topic in sorted(topics)])


@receiver(post_save, sender=GroupPost, dispatch_uid="boards.post_reaches_board")
def post_reaches_board(sender, instance: GroupPost, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        _touch(instance.group_id)


@receiver(post_save, sender=BoardActivity, dispatch_uid="boards.activity_reaches_board")
def activity_reaches_board(sender, instance: BoardActivity, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        _touch(instance.group_id)
