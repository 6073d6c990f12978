from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from sso.models import Delegation, PermissionRule


class ListField(forms.CharField):
    """A list of short strings, typed comma-separated (Chinese commas too)."""

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = (value or "").replace("，", ",")
        return [part.strip() for part in text.split(",") if part.strip()]


def action_choices() -> list[tuple[str, str]]:
    from sso.permissions import ACTIONS

    return [(action, f"{action} — {label}") for action, label in sorted(ACTIONS.items())]


class ActionsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=action_choices, **kwargs)


def document_kind_choices() -> list[tuple[str, str]]:
    """The registered kinds, and any kind a mirrored document or an existing rule already uses (a
    connector may send one nobody registered)."""
    from sso.permissions import DOCUMENT_KINDS

    labels = {kind: f"{kind} — {label}" for kind, label in DOCUMENT_KINDS.items()}
    if apps.is_installed("approvals"):
        for kind in apps.get_model("approvals", "ApprovalDocument").objects.values_list("kind", flat=True).distinct():
            labels.setdefault(kind, kind)
    for kinds in PermissionRule.objects.exclude(document_kinds=[]).values_list("document_kinds", flat=True):
        for kind in kinds or []:
            labels.setdefault(kind, kind)
    return sorted(labels.items())


class PermissionRuleForm(forms.ModelForm):
    actions = ActionsField(label=_("actions"))
    document_kinds = forms.MultipleChoiceField(
        choices=document_kind_choices, widget=forms.CheckboxSelectMultiple, required=False,
        label=_("document kinds"), help_text=_("none ticked: every kind"),
    )
    erp_roles = ListField(label=_("ERP roles"), required=False, help_text=_("comma-separated, e.g. purchase_manager"))
    projects = ListField(label=_("projects"), required=False)
    cost_centers = ListField(label=_("cost centers"), required=False)
    warehouses = ListField(label=_("warehouses"), required=False)
    customers = ListField(label=_("customers"), required=False)

    class Meta:
        model = PermissionRule
        fields = ["name", "enabled", "actions", "description", "connector", "erp_roles", "groups", "users",
                  "document_kinds", "max_amount", "currency", "projects", "cost_centers", "warehouses", "customers",
                  "own_department", "own_documents"]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("max_amount") is not None and not data.get("currency"):
            self.add_error("currency", _("An amount limit needs its currency."))
        return data


class DelegationForm(forms.ModelForm):
    actions = ActionsField(label=_("actions"))

    class Meta:
        model = Delegation
        fields = ["delegator", "delegate", "actions", "starts_at", "ends_at", "reason"]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("delegator") and data.get("delegator") == data.get("delegate"):
            self.add_error("delegate", _("Nobody can delegate to themselves."))
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", _("The end must be after the start."))
        return data


def subject_choices() -> list[tuple[str, str]]:
    from sso.permissions import constrained_models

    return [("", _("— the action in general —"))] + sorted(
        (model._meta.label_lower, str(model._meta.verbose_name)) for model in constrained_models()
    )


class ExplainForm(forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.order_by("username"), label=_("user"))
    action = forms.ChoiceField(choices=action_choices, label=_("action"))
    kind = forms.ChoiceField(choices=subject_choices, required=False, label=_("object kind"))
    identifier = forms.CharField(required=False, label=_("object"), help_text=_("its id or ERP number"))

    def clean(self) -> dict:
        data = super().clean()
        data["object"] = None
        if data.get("kind"):
            model = apps.get_model(data["kind"])
            identifier = (data.get("identifier") or "").strip()
            found = None
            if identifier.isdigit():
                found = model.objects.filter(pk=int(identifier)).first()
            if found is None and identifier and any(f.name == "external_id" for f in model._meta.fields):
                found = model.objects.filter(external_id=identifier).first()
            if found is None:
                self.add_error("identifier", _("No such object."))
            data["object"] = found
        return data
