import gc
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _warm_up(**_kwargs) -> None:
    """Before the pool forks: card links resolve URLs and cards render templates (portal/warmup.py)."""
    from portal.warmup import warm_up

    warm_up()


@worker_process_init.connect
def freeze_start_up_objects(**_kwargs: object) -> None:
    """A pool process starts with Django, the apps and their modules loaded: objects that live as long as
    it does. ``gc.freeze()`` leaves them out of later collections: in bench/worker_profile.py a full
    collection walking them took about 150 ms of CPU during 200 cards (~0.7 ms a card, as much as
    building the cards); frozen, none ran."""
    gc.freeze()
