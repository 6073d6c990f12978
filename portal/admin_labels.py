"""Admin labels a configuring person reads, in their language.

Fields declared without a ``verbose_name`` get Django's automatic one ("created at", "actor name"),
which is never translated: the admin then shows CREATED AT and ACTOR NAME to a zh-Hans reader. At
start-up every label that is a plain string (automatic, or written without ``_()``) gets the same
words as a lazy translation (``portal/locale`` holds them). Only the display attribute changes:
``Field._verbose_name`` and ``Meta.original_attrs`` (what migrations compare) stay as they were, so
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
        opts = model._meta
        # Model names given as plain strings (or left automatic) become translatable too; the
        # ``original_attrs`` that migrations read are left as they were.
        if isinstance(opts.verbose_name, str):
            if "verbose_name_plural" not in opts.original_attrs:
                opts.verbose_name_plural = gettext_lazy(f"{opts.verbose_name}s")
            opts.verbose_name = gettext_lazy(opts.verbose_name)
        if isinstance(opts.verbose_name_plural, str):
            opts.verbose_name_plural = gettext_lazy(opts.verbose_name_plural)
        for field in opts.get_fields(include_hidden=False):
            if isinstance(getattr(field, "verbose_name", None), str):
                field.verbose_name = gettext_lazy(field.verbose_name)
                changed += 1
    for label, name in APP_NAMES.items():
        try:
            apps.get_app_config(label).verbose_name = name
        except LookupError:
            continue
    return changed
