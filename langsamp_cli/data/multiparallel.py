"""Multi-parallel sentence sets: the same sentences in many languages, keyed by a shared id.

Three sources are recognised inside ``--data-dir`` (first match wins):

- **SIB-200 / FLORES**: sub-folders ``<lang_Script>/`` holding ``{train,dev,test}.tsv`` with an
  ``index_id`` and a ``text`` column (the repository root works too: its ``annotated/`` is used).
  Sentences are keyed ``<split>:<index_id>``, so the same FLORES sentence matches across languages.
- **Bibles**: ``*.tsv`` (``verse_id<TAB>text``) or CES ``*.xml`` whole Bibles, keyed by verse id
  (language from the file name or metadata, see :mod:`langsamp_cli.data.bible`).
- **Line-aligned files**: one plain-text file per language whose name is, or ends with, a
  ``lang_Script`` id (``eng_Latn.txt``, ``eng_Latn.devtest``, ``flores.eng_Latn``); keyed by line
  number. Empty lines count as missing sentences.

A requested language that is not present under its own id is served by an alias
(``zho_Hani`` <- ``zho_Hans``, ``swa_Latn`` <- ``swh_Latn``); :attr:`MultiParallel.used` says which
id served each request. Requested languages with no data are recorded in ``missing`` with a reason.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.data.parallel import match_requested
from langsamp_cli.errors import LangsampError
from langsamp_cli.languages import LANG_SCRIPT_RE

FORMATS = ("sib200", "bible", "lines")
_SPLITS = ("train", "dev", "test")
_ID_IN_NAME = re.compile(r"(?:^|[.\-_/])([a-z]{2,3}_[A-Z][a-z]{3})(?:\.[A-Za-z0-9]+)?$")


@dataclass
class MultiParallel:
    """Sentences by language and shared id, and the bookkeeping a report needs."""

    format: str
    data_dir: Path
    sentences: dict[str, dict[str, str]] = field(default_factory=dict)  # requested id -> {sentence id: text}
    used: dict[str, str] = field(default_factory=dict)  # requested id -> id of the data that served it
    sources: dict[str, list[str]] = field(default_factory=dict)  # requested id -> files read
    missing: dict[str, str] = field(default_factory=dict)  # requested id -> why it has no data

    @property
    def languages(self) -> list[str]:
        return list(self.sentences)

    def keep_split(self, split: str) -> None:
        """Only the sentences of one SIB-200/FLORES split (ids ``<split>:<index_id>``); languages without it
        move to ``missing``. Other formats have no splits: an error."""
        if self.format != "sib200":
            raise LangsampError(f"--split {split} only acts on SIB-200/FLORES folders; {self.data_dir} holds "
                                f"{self.format} data (drop --split)")
        for lang, sentences in list(self.sentences.items()):
            kept = {i: text for i, text in sentences.items() if i.startswith(f"{split}:")}
            if kept:
                self.sentences[lang] = kept
            else:
                del self.sentences[lang]
                self.missing[lang] = f"no {split} split for {lang} in {self.data_dir}"

    def aliased(self) -> dict[str, str]:
        """Requests served by data under another id (e.g. ``zho_Hani`` -> ``zho_Hans``)."""
        return {wanted: got for wanted, got in self.used.items() if wanted != got}


@dataclass
class ParallelSample:
    """``texts[lang][i]`` are translations of each other for every ``i``."""

    ids: list[str]
    texts: dict[str, list[str]]
    shared_available: int  # sentence ids all languages have (the pool the sample was drawn from)
    dropped: dict[str, str] = field(default_factory=dict)  # language -> why it was left out of the sample


# ---------------------------------------------------------------------------- discovery
def detect_format(data_dir: Path) -> str:
    root = data_dir / "annotated" if (data_dir / "annotated").is_dir() else data_dir
    if any((p / f"{s}.tsv").is_file() for p in root.iterdir() if p.is_dir() for s in _SPLITS):
        return "sib200"
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    if any(p.suffix.lower() in (".tsv", ".xml") for p in files):
        return "bible"
    if any(_id_in_name(p.name) for p in files):
        return "lines"
    raise LangsampError(
        f"--data-dir {data_dir}: no parallel data found; expected SIB-200/FLORES folders <lang_Script>/"
        "{train,dev,test}.tsv, Bibles (*.tsv verse_id<TAB>text or CES *.xml) or files named <lang_Script>.txt"
    )


def _id_in_name(name: str) -> str | None:
    match = _ID_IN_NAME.search(name)
    if match is None:
        stem = name.split(".", 1)[0]
        return stem if LANG_SCRIPT_RE.match(stem) else None
    return match.group(1)


def _sib200_files(data_dir: Path) -> dict[str, list[Path]]:
    from langsamp_cli.data.sib200 import discover_sib200

    found, _ = discover_sib200(data_dir)
    return {lang: [splits[s] for s in _SPLITS if s in splits] for lang, splits in found.items()}


def _bible_files(data_dir: Path) -> dict[str, list[Path]]:
    from langsamp_cli.data.bible import discover_bibles

    return {lang: [path] for lang, path in discover_bibles(data_dir).files.items()}


def _line_files(data_dir: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        lang = _id_in_name(path.name)
        if lang is not None:
            found.setdefault(lang, []).append(path)
    return found


# ---------------------------------------------------------------------------- readers (one per format)
def _read_sib200(paths: list[Path]) -> dict[str, str]:
    from langsamp_cli.data.sib200 import read_sib200_tsv

    out: dict[str, str] = {}
    for path in paths:
        rows = read_sib200_tsv(path)
        for index_id, text in zip(rows.ids, rows.texts):
            out[f"{path.stem}:{index_id}"] = text
    return out


def _read_bible(paths: list[Path]) -> dict[str, str]:
    from langsamp_cli.data.bible import read_bible

    return {str(verse): text for verse, text in read_bible(paths[0]).items()}


def _read_lines(paths: list[Path]) -> dict[str, str]:
    if len(paths) > 1:
        names = ", ".join(p.name for p in paths)
        raise LangsampError(f"several line-aligned files for one language ({names}); keep one per language")
    try:
        lines = paths[0].read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise LangsampError(f"{paths[0]}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from err
    return {str(i + 1): line.strip() for i, line in enumerate(lines) if line.strip()}


_DISCOVER: dict[str, Callable[[Path], dict[str, list[Path]]]] = {
    "sib200": _sib200_files, "bible": _bible_files, "lines": _line_files,
}
_READ: dict[str, Callable[[list[Path]], dict[str, str]]] = {
    "sib200": _read_sib200, "bible": _read_bible, "lines": _read_lines,
}


def available_languages(data_dir: str | Path, fmt: str | None = None) -> list[str]:
    """Every language id with data under ``data_dir`` (the format detected unless given)."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise LangsampError(f"--data-dir {data_dir} is not a directory; point it at a multi-parallel data set")
    return sorted(_DISCOVER[fmt or detect_format(data_dir)](data_dir))


def load_multiparallel(data_dir: str | Path, languages: Sequence[str], fmt: str | None = None) -> MultiParallel:
    """Read the requested languages (canonical ids) from ``data_dir``; absent ones go to ``missing``."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise LangsampError(f"--data-dir {data_dir} is not a directory; point it at a multi-parallel data set")
    fmt = fmt or detect_format(data_dir)
    if fmt not in FORMATS:
        raise LangsampError(f"unknown parallel data format {fmt!r}; use one of {', '.join(FORMATS)}")
    files = _DISCOVER[fmt](data_dir)
    result = MultiParallel(format=fmt, data_dir=data_dir)
    for wanted, available in match_requested(languages, sorted(files)).items():
        if available is None:
            result.missing[wanted] = f"no {fmt} data for {wanted} (or an alias of it) in {data_dir}"
            continue
        try:
            sentences = _READ[fmt](files[available])
        except LangsampError as err:
            result.missing[wanted] = str(err)
            continue
        if not sentences:
            result.missing[wanted] = f"{files[available][0]}: no sentences"
            continue
        result.sentences[wanted] = sentences
        result.used[wanted] = available
        result.sources[wanted] = [str(p) for p in files[available]]
    return result


# ---------------------------------------------------------------------------- sampling
def sample_parallel(data: MultiParallel, n: int, seed: int) -> ParallelSample:
    """``n`` sentence ids shared by all languages, drawn with ``random.Random(seed)`` from the sorted pool.

    A language whose presence would shrink the shared pool below ``n`` (a partial Bible, say) is
    left out (recorded in ``dropped``) as long as two or more languages remain; the smallest
    coverage goes first. When the pool is still smaller than ``n``, all of it is used.
    """
    if n < 1:
        raise LangsampError(f"--n must be at least 1 (got {n})")
    kept, pool, dropped = _widest_pool(data.sentences, n, "--n")
    ids = sorted(pool, key=_sort_key)
    chosen = sorted(random.Random(seed).sample(ids, min(n, len(ids))), key=_sort_key)
    texts = {lang: [sentences[i] for i in chosen] for lang, sentences in kept.items()}
    return ParallelSample(ids=chosen, texts=texts, shared_available=len(pool), dropped=dropped)


def first_shared(data: MultiParallel, n: int, flag: str = "--pairs") -> ParallelSample:
    """The first ``n`` sentence ids (in id order) shared by all languages, with the same language
    dropping rule as :func:`sample_parallel`; deterministic, so every run and shard sees one set."""
    kept, pool, dropped = _widest_pool(data.sentences, n, flag)
    chosen = sorted(pool, key=_sort_key)[:n]
    texts = {lang: [sentences[i] for i in chosen] for lang, sentences in kept.items()}
    return ParallelSample(ids=chosen, texts=texts, shared_available=len(pool), dropped=dropped)


def _widest_pool(sentences: dict[str, dict[str, str]], n: int,
                 flag: str) -> tuple[dict[str, dict[str, str]], set[str], dict[str, str]]:
    """(languages kept, ids they all share, dropped language -> why): the smallest-coverage language
    goes while the pool is below ``n``, dropping it widens the pool, and more than two remain."""
    kept = dict(sentences)
    dropped: dict[str, str] = {}
    pool = _shared(kept)
    while len(pool) < n and len(kept) > 2:
        smallest = min(kept, key=lambda lang: (len(kept[lang]), lang))
        rest = {lang: s for lang, s in kept.items() if lang != smallest}
        if len(_shared(rest)) <= len(pool):
            break
        dropped[smallest] = (f"shares only {len(pool)} sentences with the other languages (< {flag} {n}); "
                             f"it has {len(kept[smallest])} in total")
        kept, pool = rest, _shared(rest)
    return kept, pool, dropped


def _shared(sentences: dict[str, dict[str, str]]) -> set[str]:
    sets = [set(s) for s in sentences.values()]
    return set.intersection(*sets) if sets else set()


def _sort_key(sentence_id: str) -> tuple:
    """Numeric parts compare as numbers so ``dev:10`` follows ``dev:9``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[:.]", sentence_id))
