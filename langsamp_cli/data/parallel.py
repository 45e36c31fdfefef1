"""Line-aligned parallel files (SR-B / SR-T): discovery, reading and validation.

Layout (the official one): ``{prefix}.{lang}-eng_Latn.{lang}`` holds the target-language side and
``{prefix}.{lang}-eng_Latn.eng_Latn`` the English side; line i of one is the translation of line i
of the other. Lines are read like the official scripts read them (text mode, ``str.strip()``).

Problems that make one language unusable raise :class:`ParallelDataError`; the retrieval runner
records the message as that language's skip reason and goes on with the next language:
- a missing file, invalid UTF-8, files with different line counts, no pairs at all;
- more than ``MAX_EMPTY_FRACTION`` of the pairs with an empty side.
Below that limit, pairs with an empty side are dropped (both sides together, so alignment holds)
and their number is stored in the language's result record as ``dropped_empty``. The official
data have no empty lines, so this never changes an official number.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from langsamp_cli.errors import LangsampError

ENGLISH = "eng_Latn"
MAX_EMPTY_FRACTION = 0.10


class ParallelDataError(LangsampError):
    """One language's files cannot be used; the message becomes its skip reason."""


@dataclass
class ParallelPairs:
    """Aligned sentences: ``target[i]`` translates ``english[i]``."""

    lang_script: str
    target: list[str]
    english: list[str]
    dropped_empty: int = 0
    sources: list[str] = field(default_factory=list)
    ids: list[int] | None = None  # verse ids when the pairs come from whole Bibles
    notes: dict = field(default_factory=dict)  # anything else the result record should keep

    def __len__(self) -> int:
        return len(self.target)

    def first(self, limit: int | None) -> ParallelPairs:
        """The first ``limit`` pairs (the task's ``pairs`` cap); how many there were is noted."""
        if limit is None or len(self) <= limit:
            return self
        self.notes["pairs_available"] = len(self)
        self.target, self.english = self.target[:limit], self.english[:limit]
        self.ids = self.ids[:limit] if self.ids is not None else None
        return self

    def record_extra(self) -> dict:
        """What a result record keeps about where the pairs came from."""
        extra: dict = {"sources": self.sources, "dropped_empty": self.dropped_empty}
        if self.ids:
            extra["verse_ids"] = {"first": self.ids[0], "last": self.ids[-1]}
        return {**extra, **self.notes}


@dataclass(frozen=True)
class PairFiles:
    """The two files of one language pair (either may be missing; reading reports it)."""

    lang_script: str
    target: Path
    english: Path
    code: str  # the language code as written in the file name


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 text file, stripped (the official ``[l.strip() for l in open(f)]``)."""
    path = Path(path)
    if not path.is_file():
        raise ParallelDataError(f"{path}: file not found; every language needs both files of its pair")
    try:
        with path.open(encoding="utf-8") as handle:
            return [line.strip() for line in handle]
    except UnicodeDecodeError as err:
        raise ParallelDataError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from err


def read_line_aligned(files: PairFiles, max_empty_fraction: float = MAX_EMPTY_FRACTION) -> ParallelPairs:
    target, english = read_lines(files.target), read_lines(files.english)
    if len(target) != len(english):
        raise ParallelDataError(
            f"{files.target} has {len(target)} lines but {files.english} has {len(english)}; "
            "the two files must be line-aligned"
        )
    sources = [str(files.target), str(files.english)]
    return clean_pairs(files.lang_script, target, english, sources, max_empty_fraction)


def clean_pairs(
    lang_script: str,
    target: list[str],
    english: list[str],
    sources: list[str],
    max_empty_fraction: float = MAX_EMPTY_FRACTION,
    ids: list[int] | None = None,
) -> ParallelPairs:
    """Drop pairs with an empty side (counted), or refuse the language when too many are empty."""
    total = len(target)
    if total == 0:
        raise ParallelDataError(f"{' / '.join(sources)}: no sentence pairs")
    keep = [i for i in range(total) if target[i] and english[i]]
    dropped = total - len(keep)
    if dropped > max_empty_fraction * total:
        first = next(i for i in range(total) if not (target[i] and english[i]))
        raise ParallelDataError(
            f"{' / '.join(sources)}: {dropped} of {total} pairs have an empty side (first at line {first + 1}); "
            f"more than {max_empty_fraction:.0%} is treated as broken data - fix the files"
        )
    return ParallelPairs(
        lang_script=lang_script,
        target=[target[i] for i in keep],
        english=[english[i] for i in keep],
        dropped_empty=dropped,
        sources=sources,
        ids=[ids[i] for i in keep] if ids is not None else None,
    )


def discover_official_pairs(data_dir: Path, prefix: str) -> dict[str, PairFiles]:
    """``{prefix}.{lang}-eng_Latn.{lang|eng_Latn}`` files in ``data_dir``, keyed by language id.

    A language appears when either of its two files exists, so a missing partner is reported
    when the pair is read instead of the language vanishing.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}\.(?P<lang>[^.\-]+)-{ENGLISH}\.(?P<side>[^.]+)$")
    found: dict[str, PairFiles] = {}
    for path in sorted(Path(data_dir).iterdir()):
        match = pattern.match(path.name)
        if not match or match["side"] not in (match["lang"], ENGLISH):
            continue
        lang = match["lang"]
        found[lang] = PairFiles(
            lang_script=lang,
            target=Path(data_dir) / f"{prefix}.{lang}-{ENGLISH}.{lang}",
            english=Path(data_dir) / f"{prefix}.{lang}-{ENGLISH}.{ENGLISH}",
            code=lang,
        )
    return found


def check_data_dir(data_dir: Path | str | None, flag: str = "--data-dir") -> Path:
    if data_dir is None:
        raise LangsampError(f"{flag} is required: a directory with the task's data files")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise LangsampError(f"{flag} {path} is not a directory; point it at the folder holding the data files")
    return path


def match_requested(requested: Iterable[str], available: Iterable[str],
                    any_script: Iterable[str] = ()) -> dict[str, str | None]:
    """Map each requested language id to the available id that serves it (aliases allowed), or None.

    Ids in ``any_script`` were asked for without a script (``--languages uzb``), so their script is
    only a guess: when neither the id nor an alias is available, the one available id of the same
    language in another script serves it (``uzb`` -> ``uzb_Cyrl`` in the LASER Tatoeba files).
    """
    from langsamp_cli.languages import lang_script_aliases

    available = list(available)
    bare = set(any_script)
    resolved: dict[str, str | None] = {}
    for wanted in requested:
        if wanted in available:
            resolved[wanted] = wanted
            continue
        aliases = set(lang_script_aliases(wanted))
        found = next((a for a in available if a in aliases), None)
        if found is None and wanted in bare:
            languages = {x.split("_")[0] for x in (wanted, *aliases)}
            same = [a for a in available if a.split("_")[0] in languages]
            found = same[0] if len(same) == 1 else None
        resolved[wanted] = found
    return resolved


Unit = TypeVar("Unit")


def restrict_requested(units: Mapping[str, Unit], problems: Mapping[str, str], requested: Iterable[str],
                       any_script: Iterable[str],
                       missing: Callable[[str], str]) -> tuple[dict[str, Unit], dict[str, str]]:
    """The requested languages' units and problems, under the names they are served as (aliases allowed).

    A requested id with neither a unit nor a known problem gets ``missing(id)`` as its problem;
    ``any_script``: ids given without a script (see :func:`match_requested`).
    """
    any_script = list(any_script)
    kept: dict[str, Unit] = {}
    failed: dict[str, str] = {}
    for wanted, available in match_requested(requested, sorted({*units, *problems}), any_script).items():
        if available is None:
            failed[wanted] = missing(wanted)
        elif available in problems:
            failed[served_name(wanted, available, any_script)] = problems[available]
        else:
            kept[served_name(wanted, available, any_script)] = units[available]
    return kept, failed


def served_name(wanted: str, available: str, any_script: Iterable[str] = ()) -> str:
    """The unit name for ``wanted`` served by ``available``: the requested id when it was asked for
    with a script and the data is an alias of it (``zho_Hani`` for ``zho_Hans`` data, as the Glot500
    lists name it); the data's own id otherwise (a bare ``uzb`` served by ``uzb_Cyrl``)."""
    from langsamp_cli.languages import lang_script_aliases

    if available == wanted or (wanted not in set(any_script) and available in set(lang_script_aliases(wanted))):
        return wanted
    return available
