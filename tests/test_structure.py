"""The map holds: generic modules hold registries and never import the domains that fill them.

Each module below is read as source (every import, also inside functions); a domain import in one of
them means a registry was bypassed with a branch on a domain again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("approvals", "inventory", "finance", "foresight", "notifications", "im.bot")

GENERIC = {
    "erp/subjects.py": DOMAINS + ("im",),
    "erp/events.py": DOMAINS + ("im",),
    "erp/payload.py": DOMAINS + ("im",),
    "trust/retention.py": DOMAINS + ("im", "erp"),
    "trust/selectors.py": DOMAINS + ("im", "erp"),
    "trust/signals.py": DOMAINS + ("im", "erp"),
    "trust/fields.py": DOMAINS + ("im", "erp"),
    "trust/crypto.py": DOMAINS + ("im", "erp"),
    "trust/management/commands/rotate_keys.py": DOMAINS + ("im", "erp"),
    "sso/im_login/base.py": DOMAINS + ("im",),
    "portal/tasks.py": DOMAINS + ("im",),
    "notifications/engine.py": ("approvals", "inventory", "finance", "foresight", "im.bot"),
    "notifications/cards.py": ("approvals", "inventory", "finance", "foresight", "im.bot"),
    "im/inbound.py": DOMAINS,
    "im/messages.py": DOMAINS,
    "im/platforms/devinbox/views.py": DOMAINS,
    "im/platforms/devinbox/urls.py": DOMAINS,
    "im/platforms/devinbox/adapter.py": DOMAINS,
    "im/platforms/matrix/inbound.py": DOMAINS,
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(GENERIC))
def test_generic_module_imports_no_domain(module):
    forbidden = GENERIC[module]
    bad = sorted(m for m in imported_modules(ROOT / module)
                 if any(m == d or m.startswith(d + ".") for d in forbidden))
    assert bad == [], f"{module} imports {bad}: register through the app's AppConfig.ready() instead"
