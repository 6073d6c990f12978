"""Property-based API testing: every operation in /api/schema/, fed inputs generated from the schema
by schemathesis, in-process through Django's WSGI handler (same test database): never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token

MAX_EXAMPLES = 30  # per operation: the whole run stays well under a minute (about 20 s here)


@pytest.fixture
def api_schema(demo, users):
    # Django closes "old" connections at the start and end of each request; inside a test's
    # transaction that would end it, so (as Django's own test client does) not while we run.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(users) -> str:
    return Token.objects.create(user=users["li.si"]).key


def test_no_server_error_on_any_generated_input(api_schema, token):
    # Operation by operation with Hypothesis directly (schemathesis' pytest plugin does not run under
    # pytest 9); failures are collected so one run names every operation that answered 5xx.
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def run(case):
            response = case.call(headers={"Authorization": f"Token {token}"})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}\n"
                                f"{case.as_curl_command()}")
            elif response.status_code >= 400 and response.content and response.status_code != 404:
                # (A path no URL pattern matches, e.g. a negative id, gets Django's HTML 404 page.)
                ctype = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
                if ctype.split(";")[0] not in ("application/problem+json", "application/json"):
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} as {ctype!r}")

        run()
    assert not failures, "\n".join(failures)
