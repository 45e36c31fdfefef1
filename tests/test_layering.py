"""The library never reaches up into the CLI: only `commands/` and `cli.py` may import them."""

from __future__ import annotations

import ast
from pathlib import Path

import langsamp_cli

PACKAGE = Path(langsamp_cli.__file__).parent
CLI_MODULES = ("langsamp_cli.commands", "langsamp_cli.cli")
ALLOWED = {"cli.py", "__main__.py"}  # __main__ is the `python -m langsamp_cli` entry to the CLI itself


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path`` (a module of ``package``), relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
            found.append((node.lineno, base))
    return found


def reaches_cli(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in CLI_MODULES)


def test_library_modules_do_not_import_the_cli() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "commands" or relative.as_posix() in ALLOWED:
            continue
        offenders += [f"{relative}:{line} imports {name}" for line, name in imported_modules(path, package_of(path))
                     if reaches_cli(name)]
    assert offenders == []


def test_the_check_catches_absolute_relative_and_from_imports(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    lines = ["from langsamp_cli.commands import eval_transfer", "from ..cli import app", "import langsamp_cli.cli",
             "from langsamp_cli import commands", "from langsamp_cli.tasks import transfer"]
    sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
    flagged = sorted({line for line, name in imported_modules(sample, "langsamp_cli.analysis") if reaches_cli(name)})
    assert flagged == [1, 2, 3, 4]
