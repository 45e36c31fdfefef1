"""Layering is linted by import-linter (contracts in pyproject.toml), run here so the test command runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import langsamp_cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(langsamp_cli.__file__).parent


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under ``root`` with ``root``'s pyproject.toml (no cache left behind)."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          check=False)


def test_import_contracts_are_kept() -> None:
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_contracts_catch_the_library_importing_the_cli(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    copy = tmp_path / "langsamp_cli"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "task_configs", "samples",
                                                                 "demo_corpus"))
    (copy / "analysis" / "probe.py").write_text("from langsamp_cli.commands import donor\n", encoding="utf-8")
    run = lint_imports(tmp_path)
    assert run.returncode == 1
    assert "langsamp_cli.analysis.probe -> langsamp_cli.commands.donor (l.1)" in run.stdout
