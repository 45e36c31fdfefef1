"""Taxi1500 (6 topic classes over Bible verses): TSV files, and target test sets built from Bibles.

File format (official, no header): ``verse_id<TAB>label<TAB>text``, one verse a line, files named
``<lang>_{train,dev,test}.tsv`` (the official English split is ``eng_train/dev/test.tsv``). The
official reader used pandas with ``on_bad_lines='skip'``, so malformed rows vanished; here a
malformed line is an error naming ``file:line`` and a duplicate verse id is an error too.

The authors do not distribute labelled target test sets. A target test set is built from any
Bible (verse-id TSV or CES XML, read by :mod:`langsamp_cli.data.bible`) by joining on the verse
ids of the official *test* split: the label comes from the official split, the text from the
Bible. How many of the official test verses a Bible covers is reported with the set.

:class:`LabelledTexts` is the in-memory form shared by both classification readers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.errors import LangsampError

SPLITS = ("train", "dev", "test")
_FILE_RE = re.compile(r"^(?P<lang>.+)_(?P<split>train|dev|test)\.tsv$")


@dataclass
class LabelledTexts:
    """Texts with one label each, plus where they came from and what was left out (and why)."""

    texts: list[str]
    labels: list[str]
    ids: list[str]
    source: str
    notes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: list[int], note: dict | None = None) -> LabelledTexts:
        return LabelledTexts(
            texts=[self.texts[i] for i in keep],
            labels=[self.labels[i] for i in keep],
            ids=[self.ids[i] for i in keep],
            source=self.source,
            notes={**self.notes, **(note or {})},
        )

    def head(self, n: int | None) -> LabelledTexts:
        """The first ``n`` examples (all when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        return self.subset(list(range(n)), {"truncated_to": n, "rows_before_truncation": len(self)})


def read_taxi1500_tsv(path: str | Path) -> LabelledTexts:
    """Read one Taxi1500 TSV; malformed lines, empty files and duplicate ids raise LangsampError."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: Taxi1500 file not found")
    texts, labels, ids = [], [], []
    first_seen: dict[str, int] = {}
    for lineno, fields in _lines(path):
        verse_id, label, text = _parse_line(path, lineno, fields)
        if verse_id in first_seen:
            raise LangsampError(
                f"{path}:{lineno}: verse id {verse_id} already at line {first_seen[verse_id]}; keep one row per verse"
            )
        first_seen[verse_id] = lineno
        ids.append(verse_id)
        labels.append(label)
        texts.append(text)
    if not texts:
        raise LangsampError(f"{path}: no rows; expected 'verse_id<TAB>label<TAB>text' lines")
    return LabelledTexts(texts, labels, ids, source=str(path))


def _lines(path: Path):
    for lineno, fields in tsv_rows(path):
        yield lineno, fields


def tsv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank row, with CSV quoting undone.

    The official scripts read these TSVs with ``pandas.read_csv(sep='\\t')``, whose quoting rules are
    Python's csv defaults: a field that *starts* with ``"`` is quoted (``""`` inside stands for one
    ``"``), a quote anywhere else is literal. We parse the same way so the texts are the ones the
    official code fine-tunes and tests on. A row pandas would skip for bad quoting, and a quoted
    field that swallows a line break (an unbalanced quote), is an error naming the line instead.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quotechar='"', doublequote=True, strict=True)
            start = 1
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:
                    raise LangsampError(f"{path}:{start}: malformed quoting ({err}); a field that starts with '\"' "
                                        "must end with '\"' (write \"\" for a quote inside it)") from None
                end = reader.line_num
                if any("\n" in f or "\r" in f for f in fields):
                    raise LangsampError(f"{path}:{start}: a quoted field runs over {end - start + 1} lines (an "
                                        'unbalanced \'"\'); close the quote or double it as ""')
                if any(f.strip() for f in fields):
                    yield start, fields
                start = end + 1
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from err


def _parse_line(path: Path, lineno: int, fields: list[str]) -> tuple[str, str, str]:
    if len(fields) != 3:
        raise LangsampError(
            f"{path}:{lineno}: expected 3 tab-separated fields 'verse_id<TAB>label<TAB>text', got {len(fields)}: "
            f"{chr(9).join(fields)[:60]!r}; fix or remove the line"
        )
    verse_id, label, text = (f.strip() for f in fields)
    if not verse_id.isdigit():
        raise LangsampError(f"{path}:{lineno}: verse id {verse_id!r} is not a number (BBCCCVVV); fix the line")
    if not label or not text:
        raise LangsampError(f"{path}:{lineno}: empty label or text; fix or remove the line")
    return verse_id, label, text


def discover_taxi1500(data_dir: str | Path) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """``<lang>_{train,dev,test}.tsv`` in ``data_dir`` or below -> ({lang_Script: {split: path}}, problems).

    ``<lang>`` is anything :func:`languages.parse_lang_script` accepts (``eng``, ``eng_Latn``, ``en``);
    files whose language cannot be told are returned in ``problems`` (file name -> reason).
    """
    from langsamp_cli.languages import parse_lang_script

    found: dict[str, dict[str, Path]] = {}
    problems: dict[str, str] = {}
    for path in sorted(Path(data_dir).rglob("*.tsv")):
        match = _FILE_RE.match(path.name)
        if not match:
            continue
        try:
            lang = parse_lang_script(match["lang"], text_sample=_sample(path)).id
        except LangsampError as err:
            problems[path.name] = f"{path}: cannot tell the language from the file name ({err})"
            continue
        splits = found.setdefault(lang, {})
        if match["split"] in splits:
            problems[path.name] = f"{path}: {lang} {match['split']} already comes from {splits[match['split']]}"
        else:
            splits[match["split"]] = path
    return found, problems


def _sample(path: Path) -> str:
    with path.open(encoding="utf-8", errors="ignore") as handle:
        return " ".join(line.rsplit("\t", 1)[-1] for _, line in zip(range(20), handle))


# ---------------------------------------------------------------------------- Bible targets
def join_bible(official_test: LabelledTexts, bible: dict[int, str], source: str) -> LabelledTexts:
    """The official test verses found in ``bible``: label from the official split, text from the Bible.

    ``notes`` records the coverage: ``test_verses`` (official), ``covered``, ``missing`` and the
    first few missing verse ids, so a thin Bible is visible in the results.
    """
    keep = [i for i, verse in enumerate(official_test.ids) if int(verse) in bible]
    kept = set(keep)
    missing = [verse for i, verse in enumerate(official_test.ids) if i not in kept]
    coverage = {
        "test_verses": len(official_test),
        "covered": len(keep),
        "missing": len(missing),
        "missing_examples": missing[:10],
        "bible": source,
        "labels_from": official_test.source,
    }
    if not keep:
        raise LangsampError(
            f"{source}: none of the {len(official_test)} Taxi1500 test verses is in this Bible "
            "(verse ids must be PBC BBCCCVVV); check the file"
        )
    joined = official_test.subset(keep)
    joined.texts = [bible[int(official_test.ids[i])] for i in keep]
    joined.source = source
    joined.notes = {**official_test.notes, "bible_join": coverage}
    return joined
