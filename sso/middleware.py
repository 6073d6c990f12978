"""The signed-in person's profile applied to each request: their time zone and language."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone, translation

from sso.models import language_of, time_zone_of


class UserTimezoneMiddleware:
    """Pages show times in the signed-in user's time zone and language (their profile)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(time_zone_of(user)))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
            # A language set in the profile wins over the browser's; without one, the browser's
            # Accept-Language (LocaleMiddleware) stands, as on the sign-in page before it.
            language = language_of(user, default="")
            if language and "lang" not in request.GET and request.COOKIES.get("django_language") is None:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
