from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoErpConfig(AppConfig):
    name = "erp.connectors.demo"
    label = "demo_erp"
    verbose_name = _("Demo ERP")
    default_auto_field = "django.db.models.BigAutoField"
