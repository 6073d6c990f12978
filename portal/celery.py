import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _warm_up(**_kwargs) -> None:
    """Before the pool forks: card links resolve URLs and cards render templates (portal/warmup.py)."""
    from portal.warmup import warm_up

    warm_up()
