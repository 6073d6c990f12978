"""Adapters declare their capabilities, like connectors: each declaration is true to the methods the
adapter has, and address_of is written once (sso.ImIdentity), not per adapter."""

import pytest
from django.utils.module_loading import import_string

from im.platforms import ADAPTER_CLASSES
from im.platforms.base import CAPABILITY_METHODS, GROUPS, RECALL, LinkedIdentityAddress, supports


@pytest.mark.parametrize("platform", sorted(ADAPTER_CLASSES))
def test_declared_capabilities_are_exactly_the_methods_the_adapter_has(platform):
    adapter_class = import_string(ADAPTER_CLASSES[platform])
    declared = adapter_class.capabilities
    assert declared <= set(CAPABILITY_METHODS), declared - set(CAPABILITY_METHODS)
    for capability, methods in CAPABILITY_METHODS.items():
        has = [callable(getattr(adapter_class, name, None)) for name in methods]
        assert all(has) == (capability in declared), (platform, capability, has)


def test_supports_reads_the_declaration():
    class Plain:
        capabilities = frozenset({RECALL})

    assert supports(Plain(), RECALL) and not supports(Plain(), GROUPS) and not supports(object(), RECALL)


@pytest.mark.parametrize("platform", sorted(set(ADAPTER_CLASSES) - {"devinbox", "webhook"}))
def test_platform_adapters_share_one_address_of(platform):
    adapter_class = import_string(ADAPTER_CLASSES[platform])
    assert issubclass(adapter_class, LinkedIdentityAddress)
    assert "address_of" not in vars(adapter_class)


def test_address_of_is_the_linked_identity(db, django_user_model):
    from im.platforms import get_adapter
    from sso.models import ImIdentity

    ann = django_user_model.objects.create_user("ann")
    assert get_adapter("slack").address_of(ann) is None
    ImIdentity.objects.create(user=ann, platform="slack", external_id="U123")
    assert get_adapter("slack").address_of(ann) == "U123"
    assert get_adapter("webhook").address_of(django_user_model.objects.create_user("bob")) == "bob"
