"""Node-RED doing the portal's intake → IM job, for bench/run.py to compare with.

Installed from npm into a temporary folder by the benchmark itself (``npm install --prefix``); one flow:
http in (POST /api/erp/:slug/events) → function (CloudEvent → card) → http request (the sink) →
http response (202). No signature check, no de-duplication, no storage, no outbox: what the portal
does on top is the point of the comparison.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

VERSION = "4"  # the current major; npm picks its latest release

FUNCTION = """
let event = msg.payload;
if (Buffer.isBuffer(event)) { event = event.toString("utf8"); }
if (typeof event === "string") { event = JSON.parse(event); }
const doc = event.data.document;
msg.payload = {type: "card.send", data: {address: event.data.approvers[0],
               card: {number: doc.id, title: doc.title, amount: doc.amount, currency: doc.currency}}};
msg.headers = {"content-type": "application/json"};
return msg;
"""


def install(prefix: Path) -> Path:
    """``npm install`` Node-RED under ``prefix``; returns its executable."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH")
    subprocess.run(  # noqa: S603 - npm with fixed arguments
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error",
         f"node-red@{VERSION}"],
        check=True, timeout=600, stdout=subprocess.DEVNULL,
    )
    return prefix / "node_modules" / ".bin" / "node-red"


def flow(sink_url: str) -> list[dict]:
    return [
        {"id": "bench", "type": "tab", "label": "intake to IM"},
        {"id": "in", "type": "http in", "z": "bench", "url": "/api/erp/:slug/events", "method": "post",
         "upload": False, "wires": [["card"]]},
        {"id": "card", "type": "function", "z": "bench", "func": FUNCTION, "outputs": 1, "wires": [["send"]]},
        {"id": "send", "type": "http request", "z": "bench", "method": "POST", "ret": "obj", "url": sink_url,
         "paytoqs": "ignore", "wires": [["answer"]]},
        {"id": "answer", "type": "http response", "z": "bench", "statusCode": "202", "headers": {}, "wires": []},
        {"id": "health", "type": "http in", "z": "bench", "url": "/healthz", "method": "get", "wires": [["ok"]]},
        {"id": "ok", "type": "http response", "z": "bench", "statusCode": "200", "headers": {}, "wires": []},
    ]


def start(executable: Path, user_dir: Path, port: int, sink_url: str, log: Path) -> subprocess.Popen:
    """Start Node-RED on 127.0.0.1:``port`` with the flow; no editor, no telemetry, warnings only."""
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "flows.json").write_text(json.dumps(flow(sink_url)))
    settings = {
        "uiHost": "127.0.0.1", "uiPort": port, "flowFile": "flows.json", "httpAdminRoot": False,
        "logging": {"console": {"level": "warn", "metrics": False, "audit": False}},
        "diagnostics": {"enabled": False}, "telemetry": {"enabled": False},
        "editorTheme": {"projects": {"enabled": False}},
    }
    (user_dir / "settings.js").write_text("module.exports = " + json.dumps(settings) + ";\n")
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - the executable npm just installed
            [str(executable), "--userDir", str(user_dir), "--settings", str(user_dir / "settings.js"),
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
