"""Atomic file and directory writes: a killed process never leaves a half-written result."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from langsamp_cli.errors import LangsampError


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to a temp file beside ``path``, fsync it, then rename it into place."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text needs a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should read like any file the user writes
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/langsamp`` (default ``~/.cache/langsamp``): the one root of every langsamp cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "langsamp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def atomic_dir(final_dir: str | Path) -> Iterator[Path]:
    """Yield a temp directory beside ``final_dir``; on success it replaces ``final_dir`` in one rename."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", suffix=".tmp", dir=final_dir.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if final_dir.exists():
            old = final_dir.with_name(f".{final_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final_dir, old)
            os.replace(tmp, final_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file whose top level is a mapping (empty file -> {}); bad YAML is a one-line error with its line."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise LangsampError(f"{where}: invalid YAML ({problem}); fix the file") from None
    except OSError as err:
        raise LangsampError(f"{path}: cannot read ({err.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LangsampError(f"{path}: expected a mapping of key: value lines at the top level, "
                            f"got {type(data).__name__}")
    return data
