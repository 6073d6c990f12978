"""``python -m portal.daphne_main``: Daphne without the per-request log lines nothing here reads."""

from __future__ import annotations

import pytest
from daphne import server as daphne_server
from daphne.access import AccessLogGenerator

from portal import daphne_main


@pytest.mark.parametrize(("env", "args", "logged"), [
    (None, [], False),
    ("1", [], True),
    (None, ["--access-log", "-"], True),
])
def test_the_access_log_is_opt_in_and_twisted_formats_no_line(monkeypatch, env, args, logged):
    started = []
    monkeypatch.setattr(daphne_server, "HTTPFactory", daphne_server.HTTPFactory)  # restored afterwards
    monkeypatch.setattr(daphne_main.PortalServer, "run", lambda self: started.append(self))
    if env is None:
        monkeypatch.delenv("DAPHNE_ACCESS_LOG", raising=False)
    else:
        monkeypatch.setenv("DAPHNE_ACCESS_LOG", env)

    daphne_main.main([*args, "-b", "127.0.0.1", "-p", "0", "portal.asgi:application"])

    (server,) = started
    assert isinstance(server.action_logger, AccessLogGenerator) is logged
    assert daphne_server.HTTPFactory is daphne_main.QuietHTTPFactory

    class Formatter:
        calls = 0

        def __call__(self, *args):
            self.calls += 1
            return "line"

    factory = daphne_main.QuietHTTPFactory(server)
    factory._logFormatter = formatter = Formatter()
    factory.log(object())
    assert formatter.calls == 0
