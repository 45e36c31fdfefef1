"""SIB-200 (7 topic classes over FLORES-200 sentences): ``<data>/<lang_Script>/{train,dev,test}.tsv``.

Each file is a TSV with the header ``index_id<TAB>category<TAB>text`` (columns found by name, so
their order may differ). Lines are split on tabs, not parsed as CSV: FLORES text has quote marks
that a CSV reader would treat as quoting. A malformed line is an error naming ``file:line``.
``labels.txt`` beside the splits (one label a line), when present, is checked against the rows.
"""

from __future__ import annotations

from pathlib import Path

from langsamp_cli.data.taxi1500 import SPLITS, LabelledTexts
from langsamp_cli.errors import LangsampError

COLUMNS = ("index_id", "category", "text")


def read_sib200_tsv(path: str | Path, labels: list[str] | None = None) -> LabelledTexts:
    """Read one SIB-200 split; ``labels`` (e.g. from labels.txt) restricts the allowed categories."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: SIB-200 file not found")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from err
    if not lines:
        raise LangsampError(f"{path}: empty file; expected the header 'index_id<TAB>category<TAB>text' and rows")
    columns = _header(path, lines[0])
    allowed = set(labels) if labels else None
    texts, cats, ids = [], [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise LangsampError(
                f"{path}:{lineno}: expected {len(columns)} tab-separated fields, got {len(fields)}: {line[:60]!r}; "
                "fix or remove the line"
            )
        row = dict(zip(columns, (f.strip() for f in fields)))
        if not row["category"] or not row["text"]:
            raise LangsampError(f"{path}:{lineno}: empty category or text; fix or remove the line")
        if allowed is not None and row["category"] not in allowed:
            raise LangsampError(
                f"{path}:{lineno}: category {row['category']!r} is not in labels.txt ({', '.join(sorted(allowed))})"
            )
        ids.append(row["index_id"])
        cats.append(row["category"])
        texts.append(row["text"])
    if not texts:
        raise LangsampError(f"{path}: header only, no rows")
    return LabelledTexts(texts, cats, ids, source=str(path))


def _header(path: Path, line: str) -> list[str]:
    columns = [c.strip() for c in line.lstrip("\ufeff").split("\t")]
    if sorted(columns) != sorted(COLUMNS):
        raise LangsampError(
            f"{path}:1: header {line[:60]!r} is not 'index_id<TAB>category<TAB>text'; SIB-200 files need that header"
        )
    return columns


def read_labels_file(folder: Path) -> list[str] | None:
    path = folder / "labels.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] or None


def discover_sib200(data_dir: str | Path) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """({lang_Script: {split: path}}, {folder: why unused}) for subfolders holding split files.

    The repository root works too: its ``annotated/`` folder is used when present.
    """
    from langsamp_cli.languages import parse_lang_script

    data_dir = Path(data_dir)
    if (data_dir / "annotated").is_dir():
        data_dir = data_dir / "annotated"
    found: dict[str, dict[str, Path]] = {}
    problems: dict[str, str] = {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        splits = {s: folder / f"{s}.tsv" for s in SPLITS if (folder / f"{s}.tsv").is_file()}
        if not splits:
            continue
        try:
            lang = parse_lang_script(folder.name).id
        except LangsampError as err:
            problems[folder.name] = f"{folder}: folder name is not a language id ({err})"
            continue
        if lang in found:
            problems[folder.name] = f"{folder}: {lang} already comes from {next(iter(found[lang].values())).parent}"
            continue
        found[lang] = splits
    return found, problems
