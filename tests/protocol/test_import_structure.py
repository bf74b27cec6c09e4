"""The protocol package imports its own modules without cycles, type-only imports included.

A cycle (head.py needing ParserLimits from request.py, which imports head.py) makes the
import order matter and hides which module depends on which; ``limits.py`` breaks it.
The graph is read off the source with ``ast``, so an import under ``TYPE_CHECKING`` or
inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import waitress_like.protocol

PACKAGE_DIR = Path(waitress_like.protocol.__file__).resolve().parent


def sibling_imports(path: Path) -> set[str]:
    """The modules of the package that ``path`` imports (``from .x import``, ``from . import x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE_DIR.glob("*.py")}
    return {name: sibling_imports(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path that ends where it starts, or [] when there is none."""
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in finished:
            return []
        for imported in sorted(graph[module]):
            cycle = visit(imported, path + [module])
            if cycle:
                return cycle
        finished.add(module)
        return []

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return []


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_protocol_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert {"head", "request", "body", "limits"} <= set(graph)
    assert find_cycle(graph) == []


def test_the_limits_import_nothing_of_the_parser() -> None:
    assert sibling_imports(PACKAGE_DIR / "limits.py") == set()
