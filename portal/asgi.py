"""ASGI entry point: HTTP through Django (the ERP intake through its lean route first, erp/asgi.py),
websockets through Channels (session auth, origin check)."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

from portal.asgi_handler import PooledSyncASGIHandler  # noqa: E402

# Not django.core.asgi.get_asgi_application(): one thread hop per request (portal/asgi_handler.py).
django_asgi_app = PooledSyncASGIHandler()

from portal.warmup import open_database_pool, warm_up  # noqa: E402

# Before Daphne listens: the URL conf, the templates and a database connection, not on the first
# person's request.
warm_up()
open_database_pool()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from erp.asgi import IntakeRoute  # noqa: E402
from portal.observability.middleware import WebsocketObservability  # noqa: E402
from widgets.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The ERP intake's lean route (group commit, no middleware chain), Django for the rest.
        "http": IntakeRoute(django_asgi_app),
        "websocket": WebsocketObservability(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

# What is loaded by now (Django, the apps, the compiled templates) lives as long as the process: left
# out of the garbage collector's full passes, as a Celery pool process does (portal/celery.py).
gc.freeze()
