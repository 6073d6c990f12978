"""Guest passes: an external member of a temporary group (the supplier's contact) is invited by
email with a one-time code, redeems it once in a browser, and from then on that browser holds a
signed cookie naming the pass. The pass opens that group's board and nothing else: it is not a
portal session (``request.user`` stays anonymous), carries no API token, and no widget or page
outside the group accepts it. It expires (the rule's ``guest_pass_hours``), and is revoked when the
group is archived or the member removed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from boards.models import GuestPass
from notifications.models import ChatGroup, ChatGroupMember

logger = logging.getLogger(__name__)

COOKIE = "portal_guest"
COOKIE_SALT = "boards.guest"
CODE_VALID = dt.timedelta(hours=24)
MAX_ATTEMPTS = 5


def _digest(code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"guest-code:{code}".encode(), hashlib.sha256).hexdigest()


def pass_hours(group: ChatGroup) -> int:
    rule = group.created_by_rule
    return rule.guest_pass_hours if rule is not None else 72


def invite(member: ChatGroupMember, *, invited_by: Any = None) -> GuestPass:
    """A new pass for an external member, its code emailed to the member's address (after commit).
    An earlier pass of the same address to the same group is revoked: one live pass per guest."""
    group = member.group
    now = timezone.now()
    code = f"{secrets.randbelow(10**8):08d}"
    GuestPass.objects.filter(group=group, email__iexact=member.external_email, revoked_at=None).update(
        revoked_at=now, revoked_reason="re-invited")
    guest = GuestPass.objects.create(
        group=group, member=member, name=member.external_name or member.external_email, email=member.external_email,
        code_digest=_digest(code), code_expires_at=now + CODE_VALID,
        expires_at=now + dt.timedelta(hours=pass_hours(group)), invited_by=invited_by,
    )
    from trust.services import record

    record("board.guest_invited", actor=invited_by, obj=guest, summary={"group": group.pk})
    transaction.on_commit(lambda: _send_code(guest.pk, code))
    return guest


def board_url(group: ChatGroup) -> str:
    return f"{settings.PORTAL_BASE_URL}/g/{group.pk}/"


def _send_code(pass_id: int, code: str) -> None:
    guest = GuestPass.objects.select_related("group").get(pk=pass_id)
    join = f"{board_url(guest.group)}join/"
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Your code for the group “%(group)s”") % {"group": guest.group.name}
        body = _(
            "You are invited to the group “%(group)s” as a guest.\n\nOpen %(url)s and enter this address and the "
            "one-time code %(code)s (valid for 24 hours).\n\nYou will see only what the group shares with you."
        ) % {"group": guest.group.name, "url": join, "code": code}
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [guest.email])
    except OSError:
        # The pass stays; an admin (or the next invitation) sends a new code.
        logger.exception("guest invitation to pass %s not sent", pass_id)


class Refused(Exception):
    pass


def not_opened() -> str:
    # One answer for "no such group", "this address is not invited", "wrong code", "used" and "expired":
    # the join page is open to anyone and must not tell which addresses a group invited.
    return _("This address and code do not open this group. A code works once, for 24 hours: ask the group "
             "for a new invitation if yours was used or has expired.")


def redeem(group: ChatGroup, email: str, code: str) -> tuple[GuestPass, str]:
    """The pass for ``email`` in ``group`` once its code matches; returns it with the cookie value.
    A code works once, for 24 hours, and five wrong codes void it."""
    with transaction.atomic():
        guest = (GuestPass.objects.select_for_update().select_related("group")
                 .filter(group=group, email__iexact=email.strip(), revoked_at=None).order_by("-created_at").first())
        if guest is None or guest.refusal() or not guest.code_digest or guest.code_expires_at <= timezone.now():
            raise Refused(not_opened())
        if not hmac.compare_digest(guest.code_digest, _digest(code.strip())):
            guest.failed_attempts += 1
            if guest.failed_attempts >= MAX_ATTEMPTS:
                guest.code_digest = ""
            guest.save(update_fields=["failed_attempts", "code_digest"])
            raise Refused(not_opened())
        guest.code_digest = ""
        guest.redeemed_at = timezone.now()
        guest.nonce = secrets.token_hex(16)
        guest.save(update_fields=["code_digest", "redeemed_at", "nonce"])
        from trust.services import record

        record("board.guest_redeemed", actor_name=f"guest:{guest.email}", obj=guest, summary={"group": group.pk})
    return guest, signing.dumps({"p": guest.pk, "n": guest.nonce}, salt=COOKIE_SALT)


def guest_from_cookie(value: str, group_id: int | None = None) -> GuestPass | None:
    """The valid pass a cookie names (for ``group_id``, when given), or None."""
    guest = read_cookie(value, group_id)
    return None if guest is None or guest.refusal() else guest


def read_cookie(value: str, group_id: int | None = None) -> GuestPass | None:
    """The pass a genuine cookie names, valid or not (so a page can say why it is refused)."""
    if not value:
        return None
    try:
        claims = signing.loads(value, salt=COOKIE_SALT)
        pass_id, nonce = int(claims["p"]), str(claims["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    guest = GuestPass.objects.select_related("group__created_by_rule").filter(pk=pass_id).first()
    if guest is None or not guest.nonce or not hmac.compare_digest(guest.nonce, nonce):
        return None
    if group_id is not None and guest.group_id != group_id:
        return None
    return guest


def revoke(queryset, reason: str) -> int:
    return queryset.filter(revoked_at=None).update(revoked_at=timezone.now(), revoked_reason=reason[:200])
