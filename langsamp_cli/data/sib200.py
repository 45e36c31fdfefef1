"""SIB-200 (7 topic classes over FLORES-200 sentences): ``<data>/<lang_Script>/{train,dev,test}.tsv``.

Each file is a TSV with the header ``index_id<TAB>category<TAB>text`` (columns found by name, so
their order may differ). The files are CSV-quoted (a text with quote marks is written
``"... ""Today ..."" ..."``); rows are parsed with the quoting rules of the official reader
(``pandas.read_csv(sep='\t')``), so the texts are the unquoted ones the official scripts use.
A malformed row is an error naming ``file:line`` (the official reader skipped it silently).
``labels.txt`` beside the splits (one label a line), when present, is checked against the rows.
"""

from __future__ import annotations

from pathlib import Path

from langsamp_cli.data.taxi1500 import SPLITS, LabelledTexts, tsv_rows
from langsamp_cli.errors import LangsampError

COLUMNS = ("index_id", "category", "text")


def read_sib200_tsv(path: str | Path, labels: list[str] | None = None) -> LabelledTexts:
    """Read one SIB-200 split; ``labels`` (e.g. from labels.txt) restricts the allowed categories."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: SIB-200 file not found")
    rows = tsv_rows(path)
    first = next(rows, None)
    if first is None:
        raise LangsampError(f"{path}: empty file; expected the header 'index_id<TAB>category<TAB>text' and rows")
    columns = _header(path, first[1])
    allowed = set(labels) if labels else None
    texts, cats, ids = [], [], []
    for lineno, fields in rows:
        if len(fields) != len(columns):
            raise LangsampError(
                f"{path}:{lineno}: expected {len(columns)} tab-separated fields, got {len(fields)}: "
                f"{chr(9).join(fields)[:60]!r}; fix or remove the line"
            )
        row = dict(zip(columns, (f.strip() for f in fields)))
        row["text"] = fields[columns.index("text")]  # unstripped, as pandas gives it
        if not row["category"] or not row["text"].strip():
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


def _header(path: Path, fields: list[str]) -> list[str]:
    columns = [c.strip().lstrip("\ufeff") for c in fields]
    if sorted(columns) != sorted(COLUMNS):
        raise LangsampError(
            f"{path}:1: header {chr(9).join(fields)[:60]!r} is not 'index_id<TAB>category<TAB>text'; "
            "SIB-200 files need that header"
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
