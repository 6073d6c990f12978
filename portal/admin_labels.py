"""Admin labels a configuring person reads, in their language.

Fields declared without a ``verbose_name`` get Django's automatic one ("created at", "actor name"),
which is never translated: the admin then shows CREATED AT and ACTOR NAME to a zh-Hans reader. At
start-up every such field gets the same words as a lazy translation (``portal/locale`` holds them).
Only the display attribute changes: ``Field._verbose_name`` (what migrations compare) stays None, so
no migration follows. Apps whose own name is English-only (axes, the dev inbox) get theirs too."""

from __future__ import annotations

from django.apps import apps
from django.utils.translation import gettext_lazy, pgettext_lazy

APP_NAMES = {
    "axes": pgettext_lazy("admin app", "Sign-in lockouts"),
    "devinbox": pgettext_lazy("admin app", "Dev inbox (IM simulator)"),
    "portal": pgettext_lazy("admin app", "Portal"),
}


def translate_automatic_labels() -> int:
    """Give every automatically named field a translatable label; returns how many were changed."""
    changed = 0
    for model in apps.get_models():
        # Model names too; ``original_attrs`` (what migrations read) keeps saying they were automatic.
        if not {"verbose_name", "verbose_name_plural"} & set(model._meta.original_attrs):
            model._meta.verbose_name_plural = gettext_lazy(f"{model._meta.verbose_name}s")
            model._meta.verbose_name = gettext_lazy(model._meta.verbose_name)
        for field in model._meta.get_fields(include_hidden=False):
            if getattr(field, "_verbose_name", "set") is None and isinstance(getattr(field, "verbose_name", None), str):
                field.verbose_name = gettext_lazy(field.verbose_name)
                changed += 1
    for label, name in APP_NAMES.items():
        try:
            apps.get_app_config(label).verbose_name = name
        except LookupError:
            continue
    return changed
