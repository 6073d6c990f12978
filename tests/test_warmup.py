"""Process start-up loads what the first request would otherwise pay for (portal/warmup.py)."""

from __future__ import annotations

import contextlib

from django.template import engines

from portal.warmup import project_templates, warm_up


def test_every_project_template_is_found_and_compiles_at_start():
    names = project_templates()
    # The pages live updates refetch, from the templates/ folder and from the apps.
    assert {"approvals/_panel.html", "widgets/page.html", "widgets/stock_body.html", "base.html"} <= set(names)
    assert not any(name.startswith(("admin/auth/", "rest_framework/")) for name in names)  # not third-party
    warm_up()
    loader = engines["django"].engine.template_loaders[0]
    # Each one compiled and kept (a template that failed to compile would be missing or its error class).
    assert [name for name in names if isinstance(loader.get_template_cache.get(name, type), type)] == []


def test_the_reverse_lookups_of_every_language_are_built_at_start(monkeypatch, settings):
    """The first reverse() per language built the resolver's lookups (about 60 ms of a first page)."""
    from django.urls import URLResolver, clear_url_caches, reverse
    from django.utils import translation

    clear_url_caches()
    warm_up()
    built = []
    populate = URLResolver._populate
    monkeypatch.setattr(URLResolver, "_populate", lambda self: built.append(self) or populate(self))
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            reverse("approvals:mine")
            reverse("healthz")
    assert built == []


def test_a_database_that_cannot_be_reached_at_start_does_not_stop_the_server(settings, monkeypatch):
    from django.db import OperationalError, connection

    from portal.warmup import open_database_pool

    settings.DATABASES = {"default": {**settings.DATABASES["default"], "OPTIONS": {"pool": {"max_size": 2}}}}
    tried = []

    def unreachable():
        tried.append(True)
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", unreachable)
    monkeypatch.setattr(connection, "close", lambda: None)
    open_database_pool()  # logs a warning, raises nothing
    assert tried == [True]


def test_the_intakes_first_event_compiles_no_schema_and_finalizes_nothing(monkeypatch):
    """A cold Daphne's first events imported jsonschema, compiled their type's schema and finalized Celery
    (about 100 ms, py-spy at 100 events/s)."""
    from erp import events
    from portal.celery import app

    monkeypatch.setattr(events, "_validators", {})
    warm_up()
    assert set(events._validators) == set(events.EVENT_SCHEMAS) and app.finalized
    compiled = []
    monkeypatch.setattr(events, "_compile", lambda schema: compiled.append(schema) or (None, None))
    for event_type in events.EVENT_SCHEMAS:
        with contextlib.suppress(events.EventDataError):  # refused, by the validators compiled at start
            events.validate(event_type, {})
    assert compiled == []
