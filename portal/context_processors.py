from django.conf import settings


def portal(request):
    return {"DEV_INBOX_ENABLED": settings.DEV_INBOX_ENABLED, "DEMO_ERP_ENABLED": settings.DEMO_ERP_ENABLED}
