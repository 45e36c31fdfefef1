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


def readable_modes(folder: Path) -> None:
    """Give ``folder`` and the private files in it (0600/0700, as mkstemp/mkdtemp and some writers such as
    transformers' ``save_pretrained`` make them) the modes of any file the user writes (0644/0755 under the
    umask), so a colleague can read a shared checkpoint."""
    mask = _umask()
    for path in (folder, *folder.rglob("*")):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            continue  # group/other bits chosen on purpose: kept
        executable = path.is_dir() or mode & 0o100
        os.chmod(path, (0o777 if executable else 0o666) & ~mask)


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
        readable_modes(tmp)
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


MAX_YAML_NODES = 100_000  # a config has hundreds; an alias bomb ("billion laughs") expands to billions


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    path: Path = Path("?")

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            line = key_node.start_mark.line + 1
            if seen is not None:
                raise LangsampError(f"{self.path}:{line}: key {key!r} appears twice (first on line {seen}); "
                                    "keep one of them")
            first_line[key] = line
        return super().construct_mapping(node, deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded (each shared node counted once per use)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def read_text_file(path: Path, what: str = "file") -> str:
    """A UTF-8 text file (a UTF-8 BOM is allowed); UTF-16, binary and other encodings are one-line errors."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LangsampError(f"{path}: cannot read the {what} ({err.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LangsampError(f"{path}: UTF-16 text, not UTF-8; save the {what} as UTF-8")
    if b"\x00" in data:
        raise LangsampError(f"{path}: not UTF-8 text (NUL bytes: a binary file?); pass a text {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise LangsampError(f"{path}:{line}: not UTF-8 text (byte offset {err.start}); save the {what} as "
                            "UTF-8") from None


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file whose top level is a mapping (empty file -> {} with a note); bad YAML, a key given twice, an
    alias bomb or a file that is not UTF-8 text is a one-line error with its line."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: config file not found")
    loader = _StrictLoader(read_text_file(path, "config file"))
    loader.path = path
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
            raise LangsampError(f"{path}: the YAML expands to more than {MAX_YAML_NODES:,} values through its "
                                "aliases (*name); refused (an alias bomb?), write the values out")
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise LangsampError(f"{where}: invalid YAML ({problem}); fix the file") from None
    except RecursionError:
        raise LangsampError(f"{path}: the YAML is nested too deeply; fix the file") from None
    finally:
        loader.dispose()
    if data is None:
        from langsamp_cli.logs import get_logger

        get_logger().info(f"note: {path} is empty; the defaults apply")
        return {}
    if not isinstance(data, dict):
        raise LangsampError(f"{path}: expected a mapping of key: value lines at the top level, "
                            f"got {type(data).__name__}")
    return data
