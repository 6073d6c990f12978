"""The map holds: generic modules hold registries and never import the domains that fill them.

Each module below is read as source (every import, also inside functions); a domain import in one of
them means a registry was bypassed with a branch on a domain again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("approvals", "inventory", "finance", "foresight", "notifications", "bot")

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
    "notifications/engine.py": ("approvals", "inventory", "finance", "foresight", "bot"),
    "notifications/cards.py": ("approvals", "inventory", "finance", "foresight", "bot"),
    "im/inbound.py": DOMAINS,
    "im/messages.py": DOMAINS,
    "im/platforms/devinbox/views.py": DOMAINS,
    "im/platforms/devinbox/urls.py": DOMAINS,
    "im/platforms/devinbox/adapter.py": DOMAINS,
    "im/platforms/matrix/inbound.py": DOMAINS,
    "sso/services.py": DOMAINS + ("im",),
    "sso/links.py": DOMAINS + ("im",),
    "portal/observability/hooks.py": DOMAINS + ("im", "erp"),
    "widgets/embed.py": DOMAINS + ("boards",),
    "widgets/apps.py": DOMAINS + ("boards",),
}
# The bot knows the language, not the domains: they register their intents (bot/intents.py).
GENERIC.update({f"bot/{module}": ("approvals", "inventory", "finance", "foresight", "notifications", "boards")
                for module in ("intents.py", "services.py", "vocabulary.py", "cards.py", "parser.py", "api.py",
                               "answers/help.py", "answers/base.py")})


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


# --- No import circle between apps ---------------------------------------------------------------------
# Every import counts, at module level or inside a function: hiding one in a function does not break a
# circle. The one exception is the usual Celery pattern, a ``tasks.py`` importing the app that queues it.
IGNORED_PARTS = {"tests", "migrations", ".venv", "bench", "scripts", "node_modules"}
# The project's own glue wires every app together on purpose (docs/architecture.md, "Import direction").
GLUE = {"portal.urls", "portal.asgi", "portal.serve", "portal.demo", "portal.management.commands.demo",
        "erp.connectors.tryton.demo", "erp.management.commands.demo_tryton"}
# Imports against the direction that close a circle, not broken yet: (importing app, imported app). This list
# only shrinks: the test fails on a circle they do not explain, and on an entry that no longer exists.
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def project_apps() -> list[str]:
    from django.apps import apps

    return sorted((config.name for config in apps.get_app_configs()
                   if Path(config.path).resolve().is_relative_to(ROOT) and ".venv" not in Path(config.path).parts),
                  key=len, reverse=True)


def app_of(module: str, apps: list[str]) -> str | None:
    """The installed app owning ``module``: the longest app name it starts with."""
    return next((app for app in apps if module == app or module.startswith(app + ".")), None)


def is_test_module(path: Path) -> bool:
    return (bool(IGNORED_PARTS & set(path.relative_to(ROOT).parts)) or path.name in {"tests.py", "conftest.py"}
            or path.name.startswith("test_") or path.name == "testing.py")


def app_import_graph() -> dict[str, dict[str, set[str]]]:
    """{app: {imported app: {"module → imported module", …}}}, from every non-test module's AST."""
    apps = project_apps()
    graph: dict[str, dict[str, set[str]]] = {app: {} for app in apps}
    for path in sorted(ROOT.rglob("*.py")):
        if is_test_module(path) or path.name == "tasks.py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = app_of(module, apps)
        if source is None or module in GLUE:
            continue
        for imported in imported_modules(path):
            target = app_of(imported, apps)
            if target is not None and target != source:
                graph[source].setdefault(target, set()).add(f"{module} → {imported}")
    return graph


def circles(graph: dict[str, dict[str, set[str]]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one app (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle_and_ignores_a_line():
    graph = {"a": {"b": {"a.x → b"}}, "b": {"c": {"b.y → c"}}, "c": {"a": {"c.z → a"}}, "d": {"a": {"d → a"}}}
    assert circles(graph) == [frozenset("abc")]
    del graph["c"]["a"]
    assert circles(graph) == []


def test_no_import_circle_between_apps():
    graph = app_import_graph()
    stale = sorted(edge for edge in KNOWN_BACK_EDGES if edge[1] not in graph.get(edge[0], {}))
    assert stale == [], f"these circles are broken: remove {stale} from KNOWN_BACK_EDGES"
    for source, target in KNOWN_BACK_EDGES:
        del graph[source][target]
    unexpected = []
    for component in circles(graph):
        edges = sorted(edge for app in component for target, seen in graph[app].items() if target in component
                       for edge in seen)
        unexpected.append(f"{sorted(component)}:\n    " + "\n    ".join(edges))
    assert unexpected == [], "apps that import each other (break with a registry filled in ready()):\n" + \
        "\n".join(unexpected)
