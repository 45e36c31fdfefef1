"""Atomic writes leave either the old or the new file, with ordinary permissions; CLI errors keep brackets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, atomic_write_text, read_yaml_mapping


def test_atomic_files_and_dirs_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "r.json", {"a": 1})
        with atomic_dir(tmp_path / "ckpt") as tmp:
            (tmp / "x").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "ckpt").stat().st_mode) == 0o755
    assert (tmp_path / "ckpt" / "x").read_text() == "y"


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(TypeError):
        atomic_write_text(target, 42)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d"):
        raise RuntimeError
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [\n")
    with pytest.raises(LangsampError, match=r"bad.yaml:\d+: invalid YAML"):
        read_yaml_mapping(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(LangsampError, match="expected a mapping"):
        read_yaml_mapping(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == {}


def test_cli_error_keeps_square_brackets(tmp_path: Path) -> None:
    missing = tmp_path / "a[1]" / "corpus"
    result = subprocess.run([sys.executable, "-m", "langsamp_cli", "pretrain", "--corpus", str(missing),
                             "--output-dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "a[1]" in result.stderr and "Traceback" not in result.stderr
