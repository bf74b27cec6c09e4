"""The package's shape, checked on its source: no import cycle, a sans-I/O protocol layer,
and no function too long to read at once.

Imports are read with ``ast``, so an import under ``TYPE_CHECKING`` or inside a function
counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import waitress_like
from tests.protocol.test_import_structure import find_cycle

PACKAGE_DIR = Path(waitress_like.__file__).resolve().parent
MAX_FUNCTION_LINES = 60
# protocol/ turns bytes into events and events into bytes; it does no I/O and runs on
# whatever thread calls it.
PROTOCOL_MAY_NOT_IMPORT = {"socket", "selectors", "threading", "ssl", "asyncio"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> list[str]:
    name = _module_name(path).split(".")
    return name if path.name == "__init__.py" else name[:-1]


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports, by full name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)[: len(_package_of(path)) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    known = set(paths)
    graph = {name: _imported_modules(path, known) - {name} for name, path in paths.items()}
    # A package's __init__ imports its submodules to re-export them; a submodule that
    # imports a sibling through the package is not a cycle of design, so edges into a
    # package's own __init__ from its submodules are read as edges to the sibling
    # modules it names, which the line above already records.
    for name in graph:
        graph[name] = {imported for imported in graph[name] if not name.startswith(imported + ".")}
    return graph


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    assert "waitress_like.channel" in graph and "waitress_like.server" in graph
    assert find_cycle(graph) == []


def test_the_channel_does_not_reach_for_the_server() -> None:
    assert "waitress_like.server" not in _graph()["waitress_like.channel"]


def test_the_protocol_layer_does_no_io() -> None:
    for path in (PACKAGE_DIR / "protocol").glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & PROTOCOL_MAY_NOT_IMPORT, (
            f"{path.name} imports {imported & PROTOCOL_MAY_NOT_IMPORT}"
        )


def test_no_function_is_longer_than_the_limit() -> None:
    too_long = []
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{_module_name(path)}.{node.name}: {length} lines")
    assert too_long == []
