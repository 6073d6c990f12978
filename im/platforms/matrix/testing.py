"""A real Synapse homeserver for tests: generated config, loopback port, SQLite, relaxed rate limits.

Used by the session fixture in ``conftest.py`` (and by hand to record fixtures). Nothing here runs in
production; Synapse itself is only a test dependency (``pip install -e .[test]``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SERVER_NAME = "portal.test"
_GENEROUS = {"per_second": 1000, "burst_count": 10000}


def synapse_available() -> bool:
    try:
        import synapse  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Account:
    user_id: str
    access_token: str
    password: str


@dataclass
class SynapseServer:
    """One homeserver process in ``directory``. ``start()`` → ``register()`` … → ``stop()``."""

    directory: Path
    relaxed_limits: bool = True
    port: int = 0
    process: subprocess.Popen | None = None
    accounts: dict[str, Account] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    def configure(self) -> None:
        import yaml  # a Synapse dependency

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        if not self.config_path.exists():
            # What `--generate-config` would write (secrets, signing key, paths), made in-process: a
            # second Synapse start just to write a file costs about 2.5 s.
            from signedjson.key import generate_signing_key, write_signing_keys

            key_path = self.directory / "signing.key"
            with key_path.open("w") as key_file:
                write_signing_keys(key_file, [generate_signing_key("a_1")])
            self.config_path.write_text(yaml.safe_dump({
                "server_name": SERVER_NAME,
                "pid_file": str(self.directory / "homeserver.pid"),
                "database": {"name": "sqlite3", "args": {"database": str(self.directory / "homeserver.db")}},
                "media_store_path": str(self.directory / "media_store"),
                "signing_key_path": str(key_path),
                "registration_shared_secret": secrets.token_urlsafe(32),
                "macaroon_secret_key": secrets.token_urlsafe(32),
                "form_secret": secrets.token_urlsafe(32),
                "report_stats": False,
            }))
        config = yaml.safe_load(self.config_path.read_text())
        config.update(
            listeners=[{
                "port": self.port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                "x_forwarded": False, "resources": [{"names": ["client", "openid"], "compress": False}],
            }],
            trusted_key_servers=[],
            suppress_key_server_warning=True,
            federation_domain_whitelist=[],
            presence={"enabled": False},
            bcrypt_rounds=4,
            enable_metrics=False,
            url_preview_enabled=False,
        )
        if self.relaxed_limits:
            # The defaults answer 429 after about ten quick messages (peers.md).
            for name in ("rc_message", "rc_registration", "rc_admin_redaction", "rc_3pid_validation",
                         "rc_joins_per_room", "rc_room_creation", "rc_presence", "rc_delayed_event_mgmt",
                         "rc_reports", "rc_media_create", "rc_registration_token_validity",
                         "rc_key_requests", "rc_federation"):
                config[name] = dict(_GENEROUS)
            config["rc_login"] = {k: dict(_GENEROUS) for k in ("address", "account", "failed_attempts")}
            config["rc_joins"] = {k: dict(_GENEROUS) for k in ("local", "remote")}
            config["rc_invites"] = {k: dict(_GENEROUS) for k in ("per_room", "per_user", "per_issuer")}
            config["rc_federation"] = {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 0,
                                       "reject_limit": 1000, "concurrent": 100}
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self, timeout: float = 90.0) -> None:  # generous: only a broken start waits it out
        self.configure()
        log = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "SYNAPSE_ASYNC_IO_REACTOR": "0"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.process.returncode}; see {self.directory}")
            try:
                if httpx.get(f"{self.url}/_matrix/client/versions", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Synapse did not answer within {timeout:.0f}s; see {self.directory}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def register(
        self, localpart: str, password: str = "secret-password", admin: bool = False  # noqa: S107 (test accounts)
    ) -> Account:
        """A user by the shared-secret admin API: nonce, then HMAC-SHA1 over nonce, user, password, admin."""
        import yaml

        secret = yaml.safe_load(self.config_path.read_text())["registration_shared_secret"]
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = httpx.get(endpoint, timeout=10).json()["nonce"]
        message = "\x00".join([nonce, localpart, password, "admin" if admin else "notadmin"])
        mac = hmac.new(secret.encode(), message.encode(), digestmod=hashlib.sha1)
        body = {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac.hexdigest()}
        response = httpx.post(endpoint, json=body, timeout=10)
        response.raise_for_status()
        data = response.json()
        account = Account(user_id=data["user_id"], access_token=data["access_token"], password=password)
        self.accounts[localpart] = account
        return account

    def client(self, account: Account) -> httpx.Client:
        """A plain client-server API client acting as ``account`` (to read what a person sees)."""
        return httpx.Client(
            base_url=f"{self.url}/_matrix/client/v3",
            headers={"Authorization": f"Bearer {account.access_token}"},
            timeout=10,
        )


def room_messages(client: httpx.Client, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The room's timeline, oldest first, as the person behind ``client`` sees it."""
    response = client.get(f"/rooms/{room_id}/messages", params={"dir": "b", "limit": limit})
    response.raise_for_status()
    return list(reversed(response.json()["chunk"]))
