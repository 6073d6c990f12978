"""Every change to who may do what is recorded: permission rules, delegations and identity links,
with who changed it, when, and the values before and after.

Signals rather than admin hooks, so that management commands, sync tasks and code paths are covered
too; the acting user comes from the request (``AuditActorMiddleware``) or is empty for the system.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.forms.models import model_to_dict

from trust.signals import CURRENT_ACTOR

_actor = CURRENT_ACTOR  # trust's audit reads it too


class AuditActorMiddleware:
    """Remembers the signed-in user for the duration of a request, for the audit records."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = _actor.set(user if user is not None and user.is_authenticated else None)
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)


def _snapshot(instance) -> dict:
    data = model_to_dict(instance)
    # Secrets and personal data stay out of the audit copy (they are encrypted at rest elsewhere).
    for name in ("password", "secret", "email", "mobile", "email_digest", "mobile_digest"):
        data.pop(name, None)
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, default=str))


def _record(instance, change: str, before: dict | None, after: dict | None) -> None:
    from sso.models import AccessChange

    actor = _actor.get()
    AccessChange.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "system",
        model=instance._meta.label,
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        change=change,
        before=before,
        after=after,
    )


def _pre_save(sender, instance, **kwargs) -> None:
    old = sender.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._audit_before = _snapshot(old) if old is not None else None


def _post_save(sender, instance, created, raw=False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    before = getattr(instance, "_audit_before", None)
    after = _snapshot(instance)
    if not created and before == after:
        return
    _record(instance, "created" if created else "updated", None if created else before, after)


def _post_delete(sender, instance, **kwargs) -> None:
    _record(instance, "deleted", _snapshot(instance), None)


def _m2m_changed(sender, instance, action, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear") or (not pk_set and action != "post_clear"):
        return
    field = next(f.name for f in type(instance)._meta.many_to_many if f.remote_field.through is sender)
    _record(instance, "updated", {"m2m": field}, {action.removeprefix("post_"): sorted(pk_set or [])})


def connect() -> None:
    from sso.models import Delegation, ErpIdentity, ImIdentity, PermissionRule

    for model in (PermissionRule, Delegation, ErpIdentity, ImIdentity):
        uid = f"audit-{model._meta.label}"
        pre_save.connect(_pre_save, sender=model, dispatch_uid=uid)
        post_save.connect(_post_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_post_delete, sender=model, dispatch_uid=uid)
    for through in (PermissionRule.users.through, PermissionRule.groups.through):
        m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=f"audit-{through._meta.label}")
