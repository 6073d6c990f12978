"""A real Tryton for the connector tests: a cached, seeded SQLite template and a trytond process.

The template (trytond-admin + seed, ~50 s on a busy machine) is built once per trytond version
and seed script and kept under var/tryton/; each test module copies it (well under a second) and
starts its own ``trytond`` on a free loopback port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .seed_tryton import PASSWORD, company_today

MODULES = ["purchase_requisition", "stock", "sale", "account_invoice"]
HERE = Path(__file__).resolve().parent


class TrytonUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class TrytonServer:
    base_url: str
    database: str
    seed: dict[str, Any]
    password: str = PASSWORD


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise TrytonUnavailable(f"{name} is not installed (pip install -e '.[test]')")
    return found


def _config(directory: Path) -> Path:
    conf = directory / "trytond.conf"
    conf.write_text(f"[database]\nuri = sqlite://\npath = {directory}\n\n[session]\nmax_attempt = 100\n")
    return conf


def template_key() -> str:
    try:
        version = importlib.metadata.version("trytond")
    except importlib.metadata.PackageNotFoundError as exc:
        raise TrytonUnavailable("trytond is not installed") from exc
    digest = hashlib.sha256((HERE / "seed_tryton.py").read_bytes() + " ".join(MODULES).encode()).hexdigest()
    return f"{version}-{digest[:12]}"


def build_template(cache_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The seeded template database and its seed ids, built once (file lock: parallel runs wait)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = template_key()
    template, ids_file = cache_dir / f"template-{key}.sqlite", cache_dir / f"template-{key}.json"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template.exists() and ids_file.exists():
            return template, json.loads(ids_file.read_text())
        with tempfile.TemporaryDirectory(dir=cache_dir) as work:
            directory = Path(work)
            conf = _config(directory)
            (directory / "tpl.sqlite").touch()
            (directory / "pw").write_text("admin\n")
            env = {**os.environ, "TRYTONPASSFILE": str(directory / "pw")}
            subprocess.run(  # noqa: S603 - our own venv's trytond-admin, fixed arguments
                [_bin("trytond-admin"), "-c", str(conf), "-d", "tpl", "-u", *MODULES, "--activate-dependencies",
                 "--email", "admin@example.com"],
                check=True, env=env, capture_output=True, timeout=600,
            )
            seeded = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "erp.connectors.tryton.seed_tryton", str(conf), "tpl"],
                check=True, capture_output=True, text=True, timeout=300, cwd=HERE.parent.parent.parent,
            )
            ids = json.loads(seeded.stdout.strip().splitlines()[-1])
            shutil.copyfile(directory / "tpl.sqlite", directory / "done.sqlite")
            os.replace(directory / "done.sqlite", template)
            ids_file.write_text(json.dumps(ids))
        return template, ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def run_server(
    template: Path, ids: dict[str, Any], directory: Path, database: str = "portal", *, keep: bool = False,
    port: int | None = None,
) -> Iterator[TrytonServer]:
    """trytond on a copy of ``template``, on a free loopback port, until the block ends. ``keep``
    reuses a database already in ``directory`` (the demo keeps its Tryton data between runs)."""
    if not (keep and (directory / f"{database}.sqlite").exists()):
        shutil.copyfile(template, directory / f"{database}.sqlite")
    conf = _config(directory)
    port = port or free_port()
    log = open(directory / "trytond.log", "wb")  # noqa: SIM115 - closed below
    env = {
        **os.environ,
        "TRYTOND_WEB__LISTEN": f"127.0.0.1:{port}",
        # Load the pool at start-up: trytond 8.2 on SQLite otherwise answers "'res.user'" to the
        # first login of a database it has not seen (Pool.database_list is a defaultdict).
        "TRYTOND_DATABASE_NAMES": database,
    }
    process = subprocess.Popen([_bin("trytond"), "-c", str(conf)], env=env, stdout=log, stderr=log)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise TrytonUnavailable(f"trytond exited: {(directory / 'trytond.log').read_text()[-2000:]}")
            try:
                answer = httpx.post(f"{base_url}/{database}/rpc/", json={
                    "id": 0, "method": "common.db.login", "params": ["li.si", {"password": PASSWORD}, "en"]}, timeout=2)
                if answer.status_code == 200 and "result" in answer.json():
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TrytonUnavailable("trytond did not answer within 30 s")
            time.sleep(0.1)
        yield TrytonServer(base_url=base_url, database=database, seed=ids)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def count_stock(server: TrytonServer, sku: str, quantity: int, warehouse: str = "SH") -> None:
    """A stock count in Tryton finds ``quantity`` of ``sku`` in ``warehouse`` (a confirmed
    ``stock.inventory``: its done moves are what the poll reads), as a warehouse keeper would."""

    from .client import TrytonClient

    with TrytonClient(server.base_url, server.database, "li.si", server.password) as erp:
        [product] = erp.search_read("product.product", [("code", "=", sku)], ["id"])
        [location] = erp.model("stock.location", "read", [server.seed["warehouses"][warehouse]], ["storage_location"])
        [inventory] = erp.model("stock.inventory", "create", [{
            "location": location["storage_location"], "company": server.seed["company"], "date": company_today(),
            "lines": [["create", [{"product": product["id"], "quantity": quantity}]]]}])
        erp.model("stock.inventory", "confirm", [inventory])

