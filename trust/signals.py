"""What goes into the audit chain, from signals so that no other app's code needs a call added:
decisions, permission and link changes (every ``sso.AccessChange`` row), sign-ins and failed
sign-ins, link-token uses, admin changes, and deliveries reaching sent or dead.

Summaries carry ids, names and kinds, never content (card texts, comments, emails, secrets). An
access change is tied to the chain by the sha256 of its before/after, not by a copy of them.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models.signals import post_init, post_save

from trust.services import Fact, record, record_many

FINAL_DELIVERY = ("sent", "dead")


# Who acts in this request: set by sso's AuditActorMiddleware, empty for the system (tasks, commands).
CURRENT_ACTOR: contextvars.ContextVar[Any] = contextvars.ContextVar("audit_actor", default=None)


def _actor() -> Any:
    return CURRENT_ACTOR.get()


def on_decision(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created:
        return
    record(
        "approval.decided",
        actor=instance.actor,
        obj=instance.document,
        summary={
            "decision": instance.pk,
            "document": instance.document.external_id,
            "outcome": instance.outcome,
            "via": instance.via,
            "on_behalf_of": instance.on_behalf_of_id,
        },
    )


def on_access_change(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created:
        return
    content = json.dumps([instance.before, instance.after], sort_keys=True, cls=DjangoJSONEncoder, default=str)
    fields = sorted(set((instance.before or {}).keys()) | set((instance.after or {}).keys()))
    record(
        "access.changed",
        actor=instance.actor,
        actor_name=instance.actor_name or None,
        object_type=instance.model,
        object_id=instance.object_id,
        summary={
            "access_change": instance.pk,
            "change": instance.change,
            "fields": fields,
            "content_sha256": hashlib.sha256(content.encode()).hexdigest(),
        },
    )


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record("auth.signed_in", actor=user, obj=user, summary={"backend": getattr(user, "backend", "")})


def on_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username") or credentials.get("login") or "")[:150]
    record("auth.sign_in_failed", actor_name="", summary={"username": username})


def on_link_token_used(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created:
        return
    record("link_token.used", actor=instance.user, obj=instance, summary={"target": instance.target})


def _label(entry: LogEntry) -> str:
    model = entry.content_type.model_class() if entry.content_type_id else None
    return model._meta.label if model is not None else (entry.content_type.model if entry.content_type_id else "")


def on_admin_change(sender: Any, instance: LogEntry, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created:
        return
    record(
        "admin.changed",
        actor=instance.user,
        object_type=_label(instance),
        object_id=instance.object_id or "",
        summary={"flag": instance.action_flag, "repr": instance.object_repr[:200],
                 "message": instance.get_change_message()[:500]},
    )


def _remember_status(sender: Any, instance: Any, **kwargs: Any) -> None:
    # What the row held when loaded, so a save can tell a change of status from a re-save.
    instance._trust_status = instance.__dict__.get("status")


def on_delivery_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    previous = None if created else getattr(instance, "_trust_status", None)
    if instance.status in FINAL_DELIVERY and instance.status != previous:
        record(
            f"delivery.{instance.status}",
            actor=_actor(),
            obj=instance,
            summary={"topic": instance.topic, "platform": instance.platform, "recipient": instance.recipient_id,
                     "attempts": instance.attempts},
        )
    instance._trust_status = instance.status


def audit_decisions(model: Any) -> None:
    """Record every new decision of ``model`` (approvals registers its ``Decision`` in ``ready()``)."""
    post_save.connect(on_decision, sender=model, dispatch_uid="trust-decision")


def audit_deliveries(model: Any, batch_finished: Any = None) -> None:
    """Record every delivery of ``model`` reaching a final status (im registers ``Delivery`` in ``ready()``):
    a save of one row, or ``batch_finished`` (a signal sent with ``deliveries``) for a batch the sender
    recorded in one multi-row update."""
    post_init.connect(_remember_status, sender=model, dispatch_uid="trust-delivery-init")
    post_save.connect(on_delivery_saved, sender=model, dispatch_uid="trust-delivery")
    if batch_finished is not None:
        batch_finished.connect(on_deliveries_finished, sender=model, dispatch_uid="trust-deliveries")


def on_deliveries_finished(sender: Any, deliveries: list[Any], **kwargs: Any) -> None:
    """A batch of outbox rows the sender recorded as sent or dead (a multi-row update, so no post_save):
    their entries are appended in one go, the same entries a save of each would have made."""
    actor = _actor()
    record_many([
        Fact(f"delivery.{d.status}", actor=actor, obj=d,
             summary={"topic": d.topic, "platform": d.platform, "recipient": d.recipient_id, "attempts": d.attempts})
        for d in deliveries
    ])


def audit_access(access_change_model: Any, link_token_use_model: Any) -> None:
    """Audit every change to who may do what, and every card link used (sso registers its models)."""
    post_save.connect(on_access_change, sender=access_change_model, dispatch_uid="trust-access-change")
    post_save.connect(on_link_token_used, sender=link_token_use_model, dispatch_uid="trust-link-token")


def connect() -> None:
    post_save.connect(on_admin_change, sender=LogEntry, dispatch_uid="trust-admin-change")
    user_logged_in.connect(on_logged_in, dispatch_uid="trust-signed-in")
    user_login_failed.connect(on_login_failed, dispatch_uid="trust-sign-in-failed")
