"""Inbound IM callbacks: ``POST /api/im/<platform>/callback`` verifies, enqueues and answers at once
(Slack and Feishu give 3 s); the task resolves the sender and acts.

The adapter's ``parse_callback`` verifies (signature, time window, decryption) and says what the
request means. A bad signature is answered 401 (or the adapter's status) and nothing is enqueued.
Button presses go through ``handle_card_action`` → the topic's handler → ``decide()``/``authorize()``,
like every card button; the sender is who the platform says (``sso.ImIdentity``), never a field we
did not verify.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from im.messages import IncomingMessage, deliver_message, has_message_handler
from im.platforms import ADAPTER_CLASSES, enabled_platforms, get_adapter
from im.platforms.base import ANSWER, CALLBACKS, CallbackRejected, InboundEvent, TransportError, Unsupported, supports
from portal.api import problem

logger = logging.getLogger(__name__)

ENQUEUED_KINDS = ("card_action", "message")


@csrf_exempt
@require_http_methods(["GET", "POST"])  # WeCom checks the URL with a GET (echostr)
def callback(request: HttpRequest, platform: str) -> HttpResponse:
    if platform not in ADAPTER_CLASSES or platform not in enabled_platforms():
        return HttpResponse(status=404)
    adapter = get_adapter(platform)
    if not supports(adapter, CALLBACKS):
        return HttpResponse(status=404)
    parse = adapter.parse_callback
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.CALLBACK_MAX_BODY_BYTES or len(request.body) > settings.CALLBACK_MAX_BODY_BYTES:
        return problem(413, _("Callback too large"))
    try:
        event = parse(request.headers, request.body, request.GET.dict())
    except CallbackRejected as exc:
        # The reason stays in the log: telling a forger which check failed helps them (padding oracles).
        logger.warning("%s callback rejected: %s", platform, exc)
        return problem(exc.status, _("Callback rejected"))
    except Unsupported:
        return HttpResponse(status=404)
    except Exception:
        # The parsers read untrusted bytes: whatever they trip over (bad JSON or XML, base64, text
        # encoding, nesting too deep, a field of the wrong type) is the sender's error, never a 500.
        logger.warning("%s callback malformed", platform, exc_info=True)
        return problem(400, _("Callback rejected"))
    if event.kind == "url_verification":
        return _answer(event.reply)
    if event.kind in ENQUEUED_KINDS:
        from im import tasks

        tasks.handle_callback.delay(platform, dataclasses.asdict(event))
    else:
        logger.info("%s callback: %s event not acted on", platform, event.kind)
    # Some platforms need a body even now: DingTalk an encrypted "success", Feishu a toast for a button.
    return _answer(event.reply)


def _answer(reply: Any) -> HttpResponse:
    if reply is None:
        return HttpResponse(status=200)
    if isinstance(reply, dict):
        return JsonResponse(reply, json_dumps_params={"ensure_ascii": False})
    return HttpResponse(str(reply), content_type="text/plain; charset=utf-8")


def handle(platform: str, data: dict[str, Any]) -> str | None:
    """Act on one verified inbound event (in a task). Returns what the presser was told."""
    from im.services import handle_card_action
    from sso.models import ImIdentity, language_of

    event = InboundEvent(**data)
    if event.kind == "message":
        return _to_bot(platform, event)
    if event.kind != "card_action":
        return None
    identity = (
        ImIdentity.objects.filter(platform=platform, external_id=event.sender)
        .filter(Q(tenant=event.tenant) | Q(tenant=""))
        .select_related("user")
        .first()
    )
    actor = identity.user if identity and identity.user.is_active else None
    with translation.override(language_of(actor)):
        if actor is None:
            text = _("Your %(platform)s account is not linked to a portal user.") % {"platform": platform}
        else:
            try:
                text = str(handle_card_action(platform, event.message_id, actor, event.action_id))
            except LookupError:
                text = _("This action is no longer available.")
    adapter = get_adapter(platform)
    if supports(adapter, ANSWER):
        try:
            adapter.answer(event, text)
        except (TransportError, Unsupported):
            # The decision stands; only the confirmation to the presser was lost (the card update shows it).
            logger.warning("could not tell the %s presser: %s", platform, text, exc_info=True)
    return text


def _to_bot(platform: str, event: InboundEvent) -> str | None:
    """Text to the portal, handed to the registered message handler (the bot). The answer goes to the
    asker privately through the outbox, even when asked in a group: the group's members are not known
    here, so nothing is posted to the group."""
    from sso.models import ImIdentity

    if not event.text or not has_message_handler():
        return None
    identity = (
        ImIdentity.objects.filter(platform=platform, external_id=event.sender)
        .filter(Q(tenant=event.tenant) | Q(tenant=""))
        .select_related("user")
        .first()
    )
    if identity is None or not identity.user.is_active:
        logger.info("%s message from unlinked %s ignored", platform, event.sender)
        return None
    conversation = f"{platform}:{event.chat_id or 'direct'}"
    return deliver_message(IncomingMessage(platform, identity.user, event.text, conversation))
