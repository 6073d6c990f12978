"""URLconf for the console tests: the project's own, plus the demo console.

The project includes the console only when DEMO_ERP_ENABLED was on at import time, which a test
cannot change afterwards; tests switch ROOT_URLCONF to this module instead.
"""

from django.apps import apps
from django.urls import include, path

if apps.is_installed("portal"):
    from portal.urls import urlpatterns as project_patterns
else:  # a reduced settings module without the portal app: the admin gives staff a login page
    from django.contrib import admin

    project_patterns = [path("admin/", admin.site.urls)]

urlpatterns = list(project_patterns)
if not any(getattr(pattern, "namespace", None) == "demo_erp" for pattern in urlpatterns):
    urlpatterns.append(path("erp/demo/", include("erp.connectors.demo.urls")))
