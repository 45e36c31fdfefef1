"""The README's examples are commands that scripts/make_docs.py runs, so they run as printed."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import load_script

REPO = Path(__file__).resolve().parents[1]


def _make_docs():
    return load_script(REPO / "scripts" / "make_docs.py")


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|console)\n(.*?)```", text, flags=re.S)
    lines = [line.removeprefix("$ ").strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("langsamp ")]


def test_every_readme_example_is_run_by_the_docs_generator() -> None:
    generated = set(_make_docs().all_commands())
    commands = readme_commands()
    assert len(commands) >= 8
    missing = [c for c in commands if c not in generated]
    assert not missing, f"README examples not run by scripts/make_docs.py: {missing}"


def test_readme_has_no_unfilled_placeholders_and_links_resolve() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "@@" not in text
    for target in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)\)", text):
        assert (REPO / target).exists(), target


def test_each_generated_page_exists_for_every_page_the_generator_knows() -> None:
    for page in _make_docs().PAGES:
        assert (REPO / "docs" / "commands" / f"{page.name}.md").is_file(), page.name
