"""The record a clean copy carries (``contamination.json`` in its root), read by `pretrain` and skipped by the
corpus reader. Torch-free and light: pretrain/corpus.py and pretrain/run_dir.py import it."""

from __future__ import annotations

import json
from pathlib import Path

CLEAN_RECORD = "contamination.json"
CLEAN_FORMAT = "langsamp-clean-corpus"


def read_clean_record(corpus: str | Path | None) -> dict | None:
    """The record of a corpus written by ``contamination --write-clean``; None for any other corpus."""
    if corpus is None:
        return None
    path = Path(corpus).expanduser() / CLEAN_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == CLEAN_FORMAT else None


def describe_clean_record(record: dict) -> str:
    """One sentence for a model card / log: what the corpus was cleaned against."""
    against = ", ".join(f"{a.get('task')} ({a.get('path')})" for a in record.get("against", []))
    return (f"cleaned with `langsamp contamination --write-clean` against {against or 'no test set'}: "
            f"{record.get('removed_lines', 0):,} line(s) removed (whole-line or {record.get('ngram')}-character "
            f"overlap with a test item); report: {record.get('report')}")
