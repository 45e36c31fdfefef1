"""The test suite's own seams: no test module leans on another, none swaps a module in sys.modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SOURCES = sorted(TESTS.glob("*.py"))


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def is_test_module(name: str) -> bool:
    """test_* modules, and conftest (pytest loads it; code to share goes in helpers.py)."""
    return name.split(".")[-1].startswith("test_") or name.split(".")[0] in ("tests", "conftest")


def is_sys_modules(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def sys_modules_writes(tree: ast.AST) -> list[int]:
    """Lines that assign or delete an item of sys.modules, or hand sys.modules to a setter (setitem, patch.dict)."""
    lines = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        lines += [node.lineno for t in targets if isinstance(t, ast.Subscript) and is_sys_modules(t.value)]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and is_sys_modules(func.value) and func.attr in (
                    "update", "pop", "setdefault", "clear", "popitem", "__setitem__", "__delitem__"):
                lines.append(node.lineno)
            elif any(is_sys_modules(arg) for arg in node.args):
                lines.append(node.lineno)
    return sorted(lines)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_test_module_imports_another(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [f"{path.name}:{line}: imports {name}" for line, name in imported_modules(tree)
           if is_test_module(name)]
    assert not bad, "move shared code to tests/helpers.py (import as `from helpers import ...`) or a conftest fixture: " \
        + "; ".join(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_test_writes_into_sys_modules(path: Path) -> None:
    lines = sys_modules_writes(ast.parse(path.read_text(encoding="utf-8")))
    assert not lines, f"{path.name}:{lines}: monkeypatch a function or use real data instead of faking a module"


@pytest.mark.parametrize("source, expected", [
    ("import sys\nsys.modules['x'] = object()\n", [2]),
    ("import sys\nmonkeypatch.setitem(sys.modules, 'x', object())\n", [2]),
    ("import sys\nfrom unittest import mock\nmock.patch.dict(sys.modules, {'x': None})\n", [3]),
    ("import sys\ndel sys.modules['x']\nsys.modules.pop('y')\n", [2, 3]),
    ("import sys\nmodule = sys.modules['x']\nprint(sys.modules.get('y'))\n", []),
])
def test_the_scanner_sees_sys_modules_writes(source: str, expected: list[int]) -> None:
    assert sys_modules_writes(ast.parse(source)) == expected


@pytest.mark.parametrize("source, bad", [
    ("from test_retrieval import run_cli\n", True),
    ("from tests.test_official_checkpoint import LANG2ID\n", True),
    ("from conftest import SAMPLE_TEXTS\n", True),
    ("import test_encode\n", True),
    ("from helpers import SAMPLE_TEXTS\nfrom langsamp_cli.tasks import retrieval\n", False),
])
def test_the_scanner_sees_cross_test_imports(source: str, bad: bool) -> None:
    assert any(is_test_module(name) for _, name in imported_modules(ast.parse(source))) is bad
