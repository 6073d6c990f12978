from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal.admin_labels import translate_automatic_labels
        from portal.observability import celery  # noqa: F401  (ids cross into Celery tasks: signal handlers)

        translate_automatic_labels()
