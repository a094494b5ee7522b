"""The boundaries of the house style, checked by parsing the code.

The data path store -> embed -> index -> recall -> service, with adapters (api, mcp, web)
over the service and the CLI assembling the process: store, embed and index do not import
one another; recall combines them; the service composes everything; the adapters talk only
to the service (plus config, errors, models) and never to each other; only the store holds
SQL and connections.
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

ADAPTERS = {"api", "mcp", "web"}
# package -> packages it must not import
FORBIDDEN = {
    "store": {"embed", "index", "recall", "service", "cli", *ADAPTERS},
    "embed": {"store", "index", "recall", "service", "cli", *ADAPTERS},
    "index": {"store", "embed", "recall", "service", "cli", *ADAPTERS},
    "recall": {"service", "cli", *ADAPTERS},
    "service": {"cli", *ADAPTERS},
}
# what an adapter may import besides its own package
ADAPTER_ALLOWED = {"service", "config", "errors", "models"}
# the CLI assembles the process: it hands the MCP mount and the web pages to the HTTP app,
# and sets the process's allocator policy (app/memory.py)
CLI_ALLOWED = {*ADAPTER_ALLOWED, "api", "mcp", "web", "memory"}


def app_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "app" and len(parts) > 1:
                found.add(parts[1])
    return found


def package_of(path: Path) -> str:
    rel = path.relative_to(APP)
    return rel.parts[0].removesuffix(".py")


def test_import_boundaries() -> None:
    problems = []
    for path in APP.rglob("*.py"):
        pkg = package_of(path)
        imports = app_imports(path) - {pkg, "__init__"}
        where = path.relative_to(APP)
        if pkg in FORBIDDEN and imports & FORBIDDEN[pkg]:
            problems.append(f"{where} imports {sorted(imports & FORBIDDEN[pkg])}")
        if pkg in ADAPTERS and imports - ADAPTER_ALLOWED:
            problems.append(f"{where} (adapter) imports {sorted(imports - ADAPTER_ALLOWED)}")
        if pkg == "cli" and imports - CLI_ALLOWED:
            problems.append(f"{where} imports {sorted(imports - CLI_ALLOWED)}")
    assert not problems, "\n".join(problems)


def test_the_service_is_one_package_of_parts() -> None:
    assert (APP / "service" / "__init__.py").is_file()
    stray = sorted(p.name for p in APP.glob("service*.py"))
    assert not stray, f"service modules outside app/service/: {stray}"
    for path in (APP / "service").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                assert not [b for b in bases if "Mixin" in b or b.endswith("Base")], (
                    f"{path.name}: {node.name}({', '.join(bases)})")


def test_only_the_store_holds_sql_and_connections() -> None:
    problems = []
    for path in APP.rglob("*.py"):
        if package_of(path) == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in (
                    "execute", "executemany", "reader", "writer", "cursor"):
                problems.append(f"{path.relative_to(APP)}:{node.lineno} uses .{node.attr}")
    assert not problems, "\n".join(problems)
