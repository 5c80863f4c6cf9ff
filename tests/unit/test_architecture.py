"""The architecture's rules that no linter checks: no import cycles between modules
(``lint-imports`` checks the layers), module and function sizes, and no module reading
another module's private attributes."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "bananas"
#: Longest module and function (``def`` to its last line), STYLE.md.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def modules() -> Iterator[Path]:
    yield from sorted(SRC.rglob("*.py"))


def test_no_import_cycles_between_modules() -> None:
    """Type-only and in-function imports count: grimp reads every import statement."""
    graph = grimp.build_graph("bananas", cache_dir=None)
    cyclic = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != "bananas" and graph.chain_exists(imported, module):
                cyclic.append(f"{module} -> {imported} -> ... -> {module}")
    assert cyclic == []


def test_a_cycle_would_be_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclic_pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from cyclic_pkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_pkg", cache_dir=None)
    assert graph.chain_exists("cyclic_pkg.a", "cyclic_pkg.b") and graph.chain_exists("cyclic_pkg.b", "cyclic_pkg.a")


def test_module_sizes() -> None:
    too_long = {
        str(p.relative_to(SRC)): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_function_sizes() -> None:
    too_long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long[f"{path.relative_to(SRC)}:{node.lineno} {node.name}"] = length
    assert too_long == {}


def private_names_defined(tree: ast.AST) -> set[str]:
    """Private names a module defines: its functions, classes, assigned attributes and names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            names.add(node.value)  # __slots__ entries
    return names


def test_no_module_reads_another_modules_private_attributes() -> None:
    found = []
    for path in modules():
        tree = ast.parse(path.read_text())
        own = private_names_defined(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} .{node.attr}")
    assert found == []
