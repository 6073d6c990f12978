from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def oidc_enabled() -> bool:
    """Whether company sign-in (OIDC) is configured: the sign-in page shows its button then."""
    return bool(getattr(settings, "OIDC_ENABLED", False))
