"""The import boundaries of the house style, checked by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# package -> packages it must not import
FORBIDDEN = {
    "store": {"embed", "index", "recall", "service", "api", "mcp", "cli"},
    "embed": {"store", "index", "recall", "service", "api", "mcp", "cli"},
    "index": {"store", "embed", "recall", "service", "api", "mcp", "cli"},
    "recall": {"service", "api", "mcp", "cli"},
}
# adapters talk only to the service (plus config, errors, models and each other's package)
ADAPTER_ALLOWED = {"service", "config", "errors", "models", "validate", "locking"}
ADAPTERS = {"api", "mcp", "cli"}


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
        imports = app_imports(path) - {pkg}
        if pkg in FORBIDDEN and imports & FORBIDDEN[pkg]:
            problems.append(f"{path.relative_to(APP)} imports {sorted(imports & FORBIDDEN[pkg])}")
        if pkg in ADAPTERS:
            extra = imports - ADAPTER_ALLOWED - ADAPTERS - {"__init__"}
            if extra:
                problems.append(f"{path.relative_to(APP)} (adapter) imports {sorted(extra)}")
    assert not problems, "\n".join(problems)
