"""What a pretraining run remembers of its corpus, so that ``--resume`` trains on the same text.

The fingerprint lists every file the run reads (path relative to the corpus root, size, and a sha256 of its
first and last ``EDGE_BYTES``; small files are hashed whole). It is cheap on a corpus of hundreds of GB and
survives a copy that does not keep mtimes, so a corpus moved to another disk is recognised as the same one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from langsamp_cli.pretrain.corpus import Corpus

EDGE_BYTES = 1 << 16


def file_digest(path: Path, size: int) -> str:
    """sha256 of the whole file when it is small, else of its first and last EDGE_BYTES."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= 2 * EDGE_BYTES:
            digest.update(handle.read())
        else:
            digest.update(handle.read(EDGE_BYTES))
            handle.seek(size - EDGE_BYTES)
            digest.update(handle.read(EDGE_BYTES))
    return digest.hexdigest()


def corpus_fingerprint(corpus: Corpus) -> dict[str, Any]:
    """{"files": {relative path: [size, digest]}, "digest": one sha256 over all of them}."""
    root = Path(corpus.root)
    files: dict[str, list[Any]] = {}
    for source in corpus.sources.values():
        for path in source.files:
            size = Path(path).stat().st_size
            files[Path(os.path.relpath(path, root)).as_posix()] = [size, file_digest(Path(path), size)]
    overall = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
    return {"files": dict(sorted(files.items())), "digest": overall}


def fingerprint_difference(saved: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None when both describe the same corpus, else the first difference in words."""
    if saved.get("digest") == current.get("digest"):
        return None
    old, new = saved.get("files", {}), current.get("files", {})
    for name in sorted(set(old) | set(new)):
        if name not in new:
            return f"{name} is missing"
        if name not in old:
            return f"{name} was not part of the run's corpus"
        if old[name][0] != new[name][0]:
            return f"{name} has {new[name][0]:,} bytes instead of {old[name][0]:,}"
        if old[name][1] != new[name][1]:
            return f"{name} has other content"
    return "the files differ"
