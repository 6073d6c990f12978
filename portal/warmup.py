"""Load at process start what Django would otherwise load on the first request that needs it.

Django imports the URL conf (and with it every view module, DRF, allauth, the admin) on the first
request it resolves, and compiles a template the first time it is rendered. Under Daphne the ERP
intake takes a lean route that never resolves a URL, so the first decision or live refetch each
process served paid for all of it: `make bench` measured the first decision answered in 1.5 s and
its pages refetched in 2.9 s, against about 0.2 and 0.4 s for the next ones. Done here, before the
server listens, the first person after a restart waits no longer than the next one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

# What other apps load at start (registered in their AppConfig.ready(): erp compiles its event schemas).
_hooks: list[Callable[[], None]] = []


def register(hook: Callable[[], None]) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def project_templates() -> list[str]:
    """Names of the project's own templates (the templates/ folder and the project's apps)."""
    from django.apps import apps
    from django.conf import settings

    base = Path(settings.BASE_DIR).resolve()
    folders = [Path(folder) for engine in settings.TEMPLATES for folder in engine.get("DIRS", [])]
    for app in apps.get_app_configs():
        path = Path(app.path).resolve()
        if path.is_relative_to(base) and ".venv" not in path.relative_to(base).parts:
            folders.append(path / "templates")
    names: set[str] = set()
    for folder in folders:
        if folder.is_dir():
            names.update(str(found.relative_to(folder)) for found in folder.rglob("*.html"))
    return sorted(names)


def _build_reverse_lookups() -> None:
    """The active language's reverse lookups: the URL conf's, and each namespace's (Django builds a
    namespace's on its first reverse(), in a resolver of its own)."""
    from django.urls import NoReverseMatch, get_resolver, reverse

    root = get_resolver()
    for namespace, (_prefix, included) in root.namespace_dict.items():
        name = next((key for key in included.reverse_dict if isinstance(key, str)), None)
        if name is not None:
            with contextlib.suppress(NoReverseMatch):  # one that needs arguments is built all the same
                reverse(f"{namespace}:{name}")


def warm_up() -> None:
    """Import the URL conf, load the translation catalogues and the reverse lookups of each language,
    and compile the project's templates."""
    from django.conf import settings
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.template import engines
    from django.template.loader import get_template
    from django.urls import get_resolver
    from django.utils import formats, translation
    from django.utils.module_loading import import_string

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Approve")
            # Per language: the resolver's reverse lookups (built on the first reverse(), 16–60 ms).
            # Not Babel's locale data (amounts, times): about 5 MiB more in every process at rest,
            # for 4–11 ms once on the first formatted page.
            _build_reverse_lookups()
            formats.get_format("DATETIME_FORMAT", lang=code)  # Django's format module of the locale
    engines["django"].engine.template_context_processors  # noqa: B018 - imports them (first page render)
    staticfiles_storage.base_url  # noqa: B018 - imports the storage ({% static %}, first page render)
    import_string(settings.MESSAGE_STORAGE)  # the messages middleware imports it on the first request
    compiled = 0
    for name in project_templates():
        try:
            get_template(name)  # the cached loader keeps it
            compiled += 1
        except Exception:  # a template that does not compile fails where it is used, as before
            logger.debug("template not compiled at start", extra={"template": name}, exc_info=True)
    warm_intake()
    logger.debug("warmed up", extra={"templates": compiled})


def warm_intake() -> None:
    """What the ERP intake's first event would load otherwise (its route resolves no URL, so the above
    does not cover it): the registered hooks (every event type's schema compiled, by erp), and the Celery
    app finalized with its broker transport imported, for the first task it publishes. A cold Daphne
    answered its first events about 100 ms late (py-spy at 100 events/s: jsonschema's import, Celery's
    finalize, kombu's transport). Nothing here connects to the broker."""
    from portal.celery import app

    for hook in _hooks:
        hook()
    app.finalize(auto=True)
    with contextlib.suppress(Exception):  # a broker URL that cannot be read fails at the first publish, as before
        with app.connection_for_write() as broker:
            broker.transport  # noqa: B018 - imports the transport, without connecting
        app.amqp.producer_pool  # noqa: B018


def open_database_pool() -> None:
    """Daphne with a connection pool (``DB_POOL_MAX_SIZE``): the pool and its first connection before the
    server listens, not in the first request (about 25 ms here). A database that cannot be reached now
    is the first request's problem, as before: the server still starts."""
    from django.conf import settings
    from django.db import connection

    if not settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        return
    try:
        connection.ensure_connection()
    except Exception:
        logger.warning("database not reachable at start; the first request connects", exc_info=True)
    finally:
        connection.close()  # back to the pool: requests run on threads of their own
