"""A short card straight to one person's IM, outside the outbox: for messages that are only useful now
(a one-time code), where a retry minutes later would be wrong. Registered with ``sso.links`` as the
way a link's one-time code reaches the recipient (``ImConfig.ready``), so sso never imports im.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation

from im.cards import Card
from im.platforms import get_adapter
from im.platforms.base import TransportError


def send_direct_card(user: Any, platform: str, *, topic: str, title: str, note: str, key: str) -> bool:
    """Send now; False when the person has no address on ``platform`` or the platform refused."""
    card = Card(topic=topic, title=title, status="", status_label="", link="", link_label="",
                locale=translation.get_language(), note=note)
    try:
        adapter = get_adapter(platform)
        address = adapter.address_of(user)
        if address is None:
            return False
        adapter.send_card(address, card, idempotency_key=key)
    except (KeyError, LookupError, TransportError):
        return False
    return True
