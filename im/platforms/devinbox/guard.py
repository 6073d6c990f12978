"""The dev inbox plays everyone's phone; it must not be reachable from other machines by accident.

Pure standard library: ``portal.serve`` (which imports no Django) uses it as well as the demo commands.
"""

from __future__ import annotations

import ipaddress
import os

TRUE = {"1", "true", "yes", "on"}


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a wildcard (0.0.0.0 is not loopback either)


def remote_bind_refusal(host: str, *, enabled: bool, allow_remote: bool) -> str | None:
    """Why serving on ``host`` is refused, or None. Loopback is always fine; anything else only with
    DEV_INBOX_ALLOW_REMOTE=1 while the dev inbox is on."""
    if not enabled or allow_remote or is_loopback(host):
        return None
    return (
        f"refusing to serve the dev inbox on {host}: it plays every user's IM client. Bind to 127.0.0.1, "
        "turn it off (DEV_INBOX_ENABLED=0), or force it with DEV_INBOX_ALLOW_REMOTE=1."
    )


def refusal_from_env(host: str, env: dict[str, str] | None = None) -> str | None:
    """The same, from the environment (for processes that have no Django settings)."""
    env = os.environ if env is None else env
    enabled_raw = env.get("DEV_INBOX_ENABLED", env.get("DEBUG", "0"))
    return remote_bind_refusal(
        host,
        enabled=enabled_raw.strip().lower() in TRUE,
        allow_remote=env.get("DEV_INBOX_ALLOW_REMOTE", "0").strip().lower() in TRUE,
    )
