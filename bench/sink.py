"""The IM platform of the benchmark: a local HTTP sink that answers every POST at once and records
when each card arrived (bench/run.py starts it in a process of its own).

Every POST body is searched for a benchmark document number (``PR-B…``), so the same sink serves the
portal's webhook adapter (``{"type": "card.send", "data": {"card": …}}``) and Node-RED's flow alike.
``GET /arrivals?since=N`` returns the records from N on as ``[number, type, address, monotonic time]``;
``time.monotonic()`` is CLOCK_MONOTONIC, one clock for every process on the machine.
"""

from __future__ import annotations

import json
import re
import time

NUMBER = re.compile(rb"PR-B[A-Z]*-\d+")
TYPE = re.compile(rb'"type"\s*:\s*"([a-z._]+)"')
ADDRESS = re.compile(rb'"address"\s*:\s*"([^"]*)"')


def serve(port: int) -> None:
    """Run the sink on 127.0.0.1:``port`` until terminated (the caller polls /arrivals to see it up)."""
    from aiohttp import web

    arrivals: list[tuple[str, str, str, float]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        at = time.monotonic()
        number = NUMBER.search(body)
        kind = TYPE.search(body)
        address = ADDRESS.search(body)
        arrivals.append((number.group().decode() if number else "", kind.group(1).decode() if kind else "",
                         address.group(1).decode() if address else "", at))
        return web.json_response({"message_id": f"sink-{len(arrivals)}"})

    async def read(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.Response(text=json.dumps(arrivals[since:]), content_type="application/json")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/arrivals", read)
    app.router.add_post("/{tail:.*}", receive)

    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)
