"""Daphne as the portal runs it: ``python -m portal.daphne_main <daphne's own arguments>``.

The same server and arguments, without two costs that Daphne pays on every HTTP request and that
nothing here reads (py-spy on a Daphne loaded with ``/healthz``: about a tenth of its busy samples;
1.27 → 1.12 ms of Daphne's CPU per request, three runs each):

- Twisted's ``HTTPFactory.log`` formats a combined-log line per request for Twisted's own log, which
  the portal never starts;
- Daphne's access log, a line per request on stdout at the default verbosity. It is off unless
  ``DAPHNE_ACCESS_LOG=1`` (or an explicit ``--access-log``): the portal's request metrics
  (``django_http_*``) and ``X-Request-ID`` cover requests, and a proxy in front usually logs them.
"""

from __future__ import annotations

import sys

from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory

from portal.env import env_bool


class QuietHTTPFactory(HTTPFactory):
    def log(self, request) -> None:
        """Twisted's per-request log line: not formatted, nothing reads it."""


class PortalServer(daphne_server.Server):
    access_log = False

    def __init__(self, *args, action_logger=None, **kwargs) -> None:
        super().__init__(*args, action_logger=action_logger if self.access_log else None, **kwargs)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    PortalServer.access_log = env_bool("DAPHNE_ACCESS_LOG", default=False) or any(
        arg == "--access-log" or arg.startswith("--access-log=") for arg in args)
    daphne_server.HTTPFactory = QuietHTTPFactory  # Server.run() builds its factory from this name
    cli = CommandLineInterface()
    cli.server_class = PortalServer
    cli.run(args)


if __name__ == "__main__":
    main()
