from __future__ import annotations

from django import template
from django.contrib.auth import get_user_model

register = template.Library()


@register.simple_tag
def bot_speakers(group) -> list[tuple[str, str]]:
    """(address, name) of the group's members who are portal users: who can write to the bot."""
    ids = [int(m) for m in group.members if str(m).isdigit()]
    users = get_user_model().objects.filter(pk__in=ids, is_active=True).order_by("username")
    return [(str(u.pk), u.get_full_name() or u.get_username()) for u in users]
