"""From the person an IM platform vouches for to a portal user, through ``ImIdentity``.

A known identity signs its user in. An unknown one is linked to an existing user when the platform
gives an email or mobile that matches exactly one active user, and only for the company's own
tenant (a user of another Feishu tenant or Slack workspace can put any email in their profile).
Otherwise sign-in is refused and the identity is recorded for admins (``UnlinkedImUser``): nobody
is created, nobody is silently skipped.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from sso.im_login.base import PlatformUser
from sso.models import ImIdentity, UnlinkedImUser
from trust.fields import digest

log = logging.getLogger(__name__)


class Unlinked(Exception):
    """Sign-in refused: ``reason`` is ``unknown``, ``ambiguous`` or ``inactive``."""

    def __init__(self, reason: str, who: PlatformUser) -> None:
        super().__init__(f"{reason}: {who.platform}:{who.tenant}/{who.external_id}")
        self.reason = reason
        self.who = who


def normalize_mobile(value: str) -> str:
    """Digits only, without China's +86: WeCom says 13800000000, Feishu +8613800000000."""
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits


def resolve(who: PlatformUser, *, expected_tenant: str = "") -> Any:
    """The active portal user for ``who``, linking them by email or mobile if allowed; raises Unlinked."""
    identity = (
        ImIdentity.objects.select_related("user")
        .filter(platform=who.platform, external_id=who.external_id, tenant__in={who.tenant, ""})
        .order_by("-tenant")  # an exact tenant match before a row that leaves the tenant blank
        .first()
    )
    if identity is not None:
        if not identity.user.is_active:
            raise _refuse("inactive", who)
        _refresh(identity, who)
        _resolved(who)
        return identity.user

    trusted = bool(expected_tenant) and who.tenant == expected_tenant
    if trusted:
        user, linked_by, reason = _match(who)
        if user is not None:
            with transaction.atomic():
                ImIdentity.objects.get_or_create(
                    platform=who.platform,
                    tenant=who.tenant,
                    external_id=who.external_id,
                    defaults={
                        "user": user,
                        "linked_by": linked_by,
                        "display_name": who.name[:150],
                        "email": who.email,
                        "mobile": who.mobile[:32],
                    },
                )
            log.info("linked %s:%s/%s to %s by %s", who.platform, who.tenant, who.external_id, user, linked_by)
            _resolved(who)
            return user
        raise _refuse(reason, who)
    raise _refuse("unknown", who)


def _match(who: PlatformUser) -> tuple[Any, str, str]:
    """(user, linked_by, "") for exactly one match by email, then by mobile; else (None, "", reason)."""
    users = get_user_model().objects.filter(is_active=True)
    reason = "unknown"
    if who.email:
        found = list(users.filter(email__iexact=who.email.strip())[:2])
        if len(found) == 1:
            return found[0], ImIdentity.LinkedBy.EMAIL, ""
        if len(found) > 1:
            reason = "ambiguous"
    mobile = normalize_mobile(who.mobile)
    if mobile:
        # Mobiles live on identities admins entered for other platforms (the user model has none),
        # encrypted: found by their keyed digest (of the normalised number).
        user_ids = set(ImIdentity.objects.filter(mobile_digest=digest(mobile)).values_list("user_id", flat=True))
        found = list(users.filter(pk__in=user_ids)[:2])
        if len(found) == 1:
            return found[0], ImIdentity.LinkedBy.MOBILE, ""
        if len(found) > 1:
            reason = "ambiguous"
    return None, "", reason


def _refuse(reason: str, who: PlatformUser) -> Unlinked:
    """Record the refused identity where admins see it, then hand back the exception to raise."""
    now = timezone.now()
    row, created = UnlinkedImUser.objects.get_or_create(
        platform=who.platform,
        tenant=who.tenant,
        external_id=who.external_id,
        defaults={"display_name": who.name[:150], "email": who.email, "mobile": who.mobile[:32], "reason": reason},
    )
    if not created:
        row.attempts += 1
        row.last_seen = now
        row.reason = reason
        row.display_name = who.name[:150] or row.display_name
        row.email = who.email or row.email
        row.mobile = who.mobile[:32] or row.mobile
        row.save()
    log.warning("IM sign-in refused (%s) for %s:%s/%s", reason, who.platform, who.tenant, who.external_id)
    return Unlinked(reason, who)


def _refresh(identity: ImIdentity, who: PlatformUser) -> None:
    """Keep what the platform says about the person (name, email, mobile) current on the identity."""
    changed = []
    for field, value in (("display_name", who.name[:150]), ("email", who.email), ("mobile", who.mobile[:32])):
        if value and getattr(identity, field) != value:
            setattr(identity, field, value)
            changed.append(field)
    if changed:
        # The lookup digests follow their encrypted fields.
        changed += [f"{field}_digest" for field in ("email", "mobile") if field in changed]
        identity.save(update_fields=changed)


def _resolved(who: PlatformUser) -> None:
    UnlinkedImUser.objects.filter(platform=who.platform, tenant=who.tenant, external_id=who.external_id).delete()
