"""Bibles keyed by verse id, and SR-B pairs built from them (also used by Taxi1500).

Verse ids are PBC style ``BBCCCVVV`` (book 01 = Genesis ... 40 = Matthew ... 66 = Revelation),
stored as ints (``40001001`` = Matthew 1:1). Two formats are read, told apart by extension (or,
failing that, by the first non-blank character):

- TSV, one ``verse_id<TAB>text`` per line (e.g. ``eng_Latn.KJV.tsv``); blank lines are ignored.
- CES XML (christos-c/bible-corpus): ``<seg id="b.MAT.1.1" type="verse">text</seg>``; book codes
  are mapped to PBC numbers (the usual aliases such as JOH/JHN, MAR/MRK, PHI/PHP are accepted).

Verses whose text is empty are treated as absent (a Bible that omits a verse leaves it blank).

Language ids of whole-Bible files, first match wins:
1. a ``lang_Script.`` prefix in the file name (``eng_Latn.KJV.tsv``, ``zul_Latn.Zulu-NT.xml``);
2. the ``ISO_639-3`` column of a ``metadata.csv`` (christos-c layout) in the file's folder or its parent;
3. the ``iso639`` attribute of the CES header's ``<language>`` element.
For 2 and 3 the script is detected from the text itself (metadata script columns have errors).

SR-B pairs from two Bibles: the verse ids both share (non-empty on both sides), sorted in
canonical order, first ``n`` (default 500). Deterministic, so every run and every model sees the
same verses.
"""

from __future__ import annotations

import csv
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.data.parallel import ParallelDataError, ParallelPairs
from langsamp_cli.errors import LangsampError

PBC_BOOKS = (
    "GEN EXO LEV NUM DEU JOS JDG RUT 1SA 2SA 1KI 2KI 1CH 2CH EZR NEH EST JOB PSA PRO ECC SNG ISA JER LAM "
    "EZK DAN HOS JOL AMO OBA JON MIC NAM HAB ZEP HAG ZEC MAL MAT MRK LUK JHN ACT ROM 1CO 2CO GAL EPH PHP "
    "COL 1TH 2TH 1TI 2TI TIT PHM HEB JAS 1PE 2PE 1JN 2JN 3JN JUD REV"
).split()
_BOOK_ALIASES = {
    "SON": "SNG", "SOL": "SNG", "SOS": "SNG", "EZE": "EZK", "JOE": "JOL", "NAH": "NAM", "MAR": "MRK",
    "MAK": "MRK", "JOH": "JHN", "ACTS": "ACT", "PHI": "PHP", "JAM": "JAS", "1JO": "1JN", "2JO": "2JN",
    "3JO": "3JN", "JDE": "JUD",
}
BOOK_NUMBERS: dict[str, int] = {code: i + 1 for i, code in enumerate(PBC_BOOKS)}
BOOK_NUMBERS.update({alias: BOOK_NUMBERS[code] for alias, code in _BOOK_ALIASES.items()})
DEFAULT_PAIRS = 500
_SAMPLE_BYTES = 65_536


def canonical_verse_id(book: int | str, chapter: int, verse: int) -> int:
    """PBC ``BBCCCVVV`` as an int; ``book`` is a number (1-66) or a book code (``MAT``, ``JOH``...)."""
    number = BOOK_NUMBERS.get(book.upper()) if isinstance(book, str) else int(book)
    if number is None:
        raise LangsampError(f"unknown Bible book code {book!r}; use one of {', '.join(PBC_BOOKS)}")
    if not (1 <= number <= 99 and 0 <= int(chapter) <= 999 and 0 <= int(verse) <= 999):
        raise LangsampError(f"verse reference {book} {chapter}:{verse} is out of range for a BBCCCVVV id")
    return number * 1_000_000 + int(chapter) * 1_000 + int(verse)


def read_bible(path: str | Path) -> dict[int, str]:
    """verse id -> text for a TSV or CES XML Bible (empty verses left out)."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: Bible file not found")
    if _is_xml(path):
        return _read_ces(path)
    return _read_tsv(path)


def _is_xml(path: Path) -> bool:
    if path.suffix.lower() in (".xml", ".ces"):
        return True
    if path.suffix.lower() in (".tsv", ".txt"):
        return False
    with path.open("rb") as handle:
        return handle.read(256).lstrip().startswith(b"<")


def _read_tsv(path: Path) -> dict[int, str]:
    verses: dict[int, str] = {}
    first_line: dict[int, int] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                verse_id, text = _parse_tsv_line(path, lineno, line)
                if verse_id in verses:
                    raise LangsampError(
                        f"{path}:{lineno}: verse id {verse_id} already seen at line {first_line[verse_id]}; "
                        "keep one line per verse"
                    )
                first_line[verse_id] = lineno
                if text:
                    verses[verse_id] = text
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from err
    return verses


def _parse_tsv_line(path: Path, lineno: int, line: str) -> tuple[int, str]:
    raw_id, tab, text = line.rstrip("\r\n").partition("\t")
    if not tab or not raw_id.strip().isdigit() or not 7 <= len(raw_id.strip()) <= 8:
        raise LangsampError(
            f"{path}:{lineno}: expected 'verse_id<TAB>text' with an 8-digit BBCCCVVV id, got {line[:40]!r}"
        )
    return int(raw_id), text.strip()


def _read_ces(path: Path) -> dict[int, str]:
    verses: dict[int, str] = {}
    try:
        for _, elem in ET.iterparse(path, events=("end",)):
            if elem.tag != "seg":
                continue
            if elem.get("type", "verse") == "verse":
                text = " ".join("".join(elem.itertext()).split())
                verse_id = _ces_verse_id(path, elem.get("id", ""))
                if text:
                    verses[verse_id] = text
            elem.clear()
    except ET.ParseError as err:
        line, column = err.position
        raise LangsampError(f"{path}:{line}:{column}: not well-formed CES XML ({err.msg}); fix the file") from err
    return verses


def _ces_verse_id(path: Path, seg_id: str) -> int:
    parts = seg_id.split(".")
    if len(parts) != 4 or parts[0] != "b" or not (parts[2].isdigit() and parts[3].isdigit()):
        raise LangsampError(f"{path}: <seg id={seg_id!r}> is not of the form b.BOOK.chapter.verse")
    if parts[1].upper() not in BOOK_NUMBERS:
        raise LangsampError(f"{path}: <seg id={seg_id!r}> has unknown book code {parts[1]!r}")
    return canonical_verse_id(parts[1], int(parts[2]), int(parts[3]))


# ---------------------------------------------------------------------------- language of a file
def bible_language(path: str | Path) -> str:
    """The ``lang_Script`` id of a whole-Bible file (see the module docstring for the rules)."""
    from langsamp_cli.languages import id_with_detected_script, written_id

    path = Path(path)
    named = written_id(path.name.split(".", 1)[0])
    if named:
        return named
    code = _metadata_code(path) or _ces_header_code(path)
    if code is None:
        raise LangsampError(
            f"{path}: cannot tell its language; rename it to '<lang_Script>.{path.name}' (e.g. zul_Latn.{path.name})"
        )
    return id_with_detected_script(code, _text_sample(path))


def _metadata_code(path: Path) -> str | None:
    for folder in (path.parent, path.parent.parent):
        table = folder / "metadata.csv"
        if not table.is_file():
            continue
        with table.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("Filename") == path.name and row.get("ISO_639-3"):
                    return row["ISO_639-3"].strip()
    return None


def _head(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(_SAMPLE_BYTES).decode("utf-8", errors="ignore")


def _ces_header_code(path: Path) -> str | None:
    match = re.search(r"<language\b[^>]*\biso639=\"([^\"]+)\"", _head(path))
    return match.group(1) if match else None


def _text_sample(path: Path) -> str:
    head = _head(path)
    if _is_xml(path):
        segments = re.findall(r"<seg\b[^>]*>(.*?)</seg>", head, flags=re.S)
        return " ".join(" ".join(segments[:50]).split())
    rows = [line.partition("\t")[2] for line in head.splitlines()[:50]]
    return " ".join(rows)


# ---------------------------------------------------------------------------- folders of Bibles
@dataclass
class BibleCollection:
    """Whole Bibles found in a folder: one file per language (first in name order), and problems."""

    files: dict[str, Path] = field(default_factory=dict)
    other_editions: dict[str, list[Path]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # file name -> why it is not used


def discover_bibles(bible_dir: str | Path, exclude: Path | None = None) -> BibleCollection:
    """Every ``*.tsv`` / ``*.xml`` Bible under ``bible_dir`` (recursively), keyed by language id."""
    found = BibleCollection()
    excluded = exclude.resolve() if exclude else None
    paths = sorted(p for p in Path(bible_dir).rglob("*") if p.suffix.lower() in (".tsv", ".xml") and p.is_file())
    for path in paths:
        if excluded is not None and path.resolve() == excluded:
            continue
        try:
            lang_script = bible_language(path)
        except LangsampError as err:
            found.problems[path.name] = str(err)
            continue
        if lang_script in found.files:
            found.other_editions.setdefault(lang_script, []).append(path)
            warnings.warn(f"{path.name}: {lang_script} already comes from {found.files[lang_script].name}; not used",
                          stacklevel=2)
        else:
            found.files[lang_script] = path
    return found


def bible_pairs(
    lang_script: str,
    target: dict[int, str],
    english: dict[int, str],
    n: int = DEFAULT_PAIRS,
    sources: list[str] | None = None,
) -> ParallelPairs:
    """The first ``n`` shared verse ids in canonical order, as aligned target/English sentences."""
    shared = sorted(target.keys() & english.keys())[:n]
    if not shared:
        raise ParallelDataError(f"{' / '.join(sources or [lang_script])}: no verse in common with the English Bible")
    return ParallelPairs(
        lang_script=lang_script,
        target=[target[v] for v in shared],
        english=[english[v] for v in shared],
        sources=list(sources or []),
        ids=shared,
    )
