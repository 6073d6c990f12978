import gc
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes every database connection before and after each task, unless this is
# set: then it closes them every this many tasks. So a pool process opened a PostgreSQL connection (a
# backend forked on the server, the session set up) for every task, most of a quiet system's tasks.
# Connections are kept instead and closed as Django closes a request's: past CONN_MAX_AGE, or once
# unusable after an error (``close_old_connections`` below).
app.conf.CELERY_DB_REUSE_MAX = 2**31
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


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender: object = None, **_kwargs: object) -> None:
    """What Django does around a request: close a connection past ``CONN_MAX_AGE`` or broken by an error,
    keep the others for the next task. Not around a task run in-process (eager): the connection is its
    caller's, in the middle of a transaction perhaps."""
    from django.db import close_old_connections

    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    close_old_connections()
