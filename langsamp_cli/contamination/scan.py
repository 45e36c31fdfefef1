"""`langsamp contamination`: stream a pretraining corpus past the hashed test items; report and optionally clean.

One corpus language at a time: its test items (every ``--against`` set of that language, aliases included,
e.g. ``zho_Hani`` corpus text against ``zho_Hans``/``zho_Hant`` SIB-200) are hashed (:mod:`.index`), then its
files are read in blocks of a few megabytes, normalised (:mod:`.normalise`) and matched. Memory holds one
language's test items and one block; it does not grow with the corpus.

A line matches an item (1) as a whole line, when their normalised texts are equal, or (2) by overlap, when
they share a span of ``ngram`` normalised characters (letters and marks only; Han/Japanese/Korean text 40%
of that). The default 50 is about ten English words: long enough that a shared span is copied text rather
than a common phrase, short enough to catch a verse or FLORES sentence quoted inside a longer line. Items
shorter than that are checked as whole lines only.

A killed scan is simply rerun: the report is written at the end (atomically), and ``--write-clean`` builds
the clean copy in a temporary folder beside OUT that is renamed into place only when every file is done.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from rich.console import Console

from langsamp_cli.contamination.index import LanguageIndex, TestItem, match_block, ngram_length
from langsamp_cli.contamination.normalise import normalise_block
from langsamp_cli.contamination.record import CLEAN_FORMAT, CLEAN_RECORD, read_clean_record
from langsamp_cli.contamination.testsets import TestSets, load_test_sets, parse_against
from langsamp_cli.errors import LangsampError
from langsamp_cli.settings import setting

BLOCK_BYTES = 4 << 20           # read this much at a time
MAX_PIECE_BYTES = 4 * BLOCK_BYTES  # a line longer than this is checked (and kept or removed) in pieces
REPORT_JSON, REPORT_CSV = "contamination_report.json", "contamination_report.csv"
EXAMPLE_CHARS = 300


@dataclass
class ContaminationSettings:
    corpus: str | None = setting("Pretraining corpus: one xxx_Scrp text file (.txt/.gz) or folder per language "
                                  "(the `pretrain --corpus` layout; default: the bundled demo corpus).", "--corpus",
                                  path=True)
    output_dir: str = setting("Where contamination_report.json/.csv go.", "--output-dir",
                               default="contamination", path=True)
    write_clean: str | None = setting("Also write a copy of the corpus without the matching lines here (same "
                                       "layout, .gz kept as .gz, plus contamination.json that pretrain records).",
                                       "--write-clean", path=True)
    ngram: int = setting("Overlap length in normalised characters (letters and marks; 40% of it for Han, "
                         "Japanese and Korean text).", "--ngram", default=50, positive=True)
    examples: int = setting("Example matches kept per corpus language and task.", "--examples", default=3,
                            non_negative=True)
    progress: bool = setting("Progress on long scans.", "--progress/--no-progress", default=True, run_only=True)
    overwrite: bool = setting("Replace an earlier clean copy in --write-clean.", "--overwrite", default=False,
                              run_only=True)


@dataclass
class SetResult:
    """One test set of one language against one corpus language."""

    corpus_lang: str
    task: str
    test_lang: str
    source: str
    items: int = 0             # items with at least one letter (the others cannot be compared)
    long_items: int = 0        # of those, long enough for the overlap check
    found_whole: int = 0
    found_overlap: int = 0
    found: int = 0             # either
    examples: list[dict] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.found / self.items if self.items else 0.0


@dataclass
class LanguageScan:
    lang_script: str
    files: list[str]
    bytes: int = 0
    lines: int = 0
    matched_lines: int = 0
    sets: list[SetResult] = field(default_factory=list)
    note: str = ""


@dataclass
class ContaminationReport:
    corpus: str
    against: list[dict]
    ngram: int
    languages: dict[str, LanguageScan] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)        # one line each: files, test sets, languages
    test_only: dict[str, list[str]] = field(default_factory=dict)  # task -> test languages with no corpus text
    seconds: float = 0.0
    report_json: Path | None = None
    report_csv: Path | None = None
    clean_dir: Path | None = None

    @property
    def rows(self) -> list[SetResult]:
        """Every (corpus language, test set) row, worst first."""
        rows = [row for scan in self.languages.values() for row in scan.sets]
        return sorted(rows, key=lambda r: (-r.share, -r.found, r.corpus_lang, r.task, r.test_lang))

    @property
    def bytes_scanned(self) -> int:
        return sum(scan.bytes for scan in self.languages.values())

    def to_json(self) -> dict:
        return {"corpus": self.corpus, "against": self.against, "ngram": self.ngram,
                "match": "normalised text (NFKC, casefold, letters and marks only): equal lines, or a shared "
                         f"span of {self.ngram} characters ({ngram_length('Hani', self.ngram)} for Han/Japanese/"
                         "Korean)",
                "seconds": round(self.seconds, 2), "bytes_scanned": self.bytes_scanned,
                "rows": [{**asdict(r), "share": round(r.share, 6)} for r in self.rows],
                "languages": {k: {n: v for n, v in asdict(s).items() if n != "sets"}
                              for k, s in self.languages.items()},
                "problems": self.problems, "test_only": self.test_only,
                "clean_dir": str(self.clean_dir) if self.clean_dir else None}


# ---------------------------------------------------------------------------------------------- entry


def check_contamination(settings: ContaminationSettings, against: list[str], console: Console | None = None
                        ) -> ContaminationReport:
    """Scan ``settings.corpus`` against every ``TASK=PATH`` in ``against``; write the report (and clean copy)."""
    from langsamp_cli.io_utils import atomic_dir

    console = console or Console(stderr=True, emoji=False)
    started = time.monotonic()
    corpus = _corpus_root(settings)
    if not against:
        raise LangsampError("give at least one --against TASK=PATH (the test sets to look for)")
    clean = _check_clean_target(settings, corpus)
    files = _language_files(corpus)
    sets, problems = _read_test_sets(against)
    report = ContaminationReport(str(corpus), [{"task": s.task, "path": str(s.path)} for s in sets], settings.ngram,
                                 problems=problems)
    served = _serve(files, sets, report)
    if clean is None:
        _scan_all(files, served, settings, report, None, console)
    else:
        with atomic_dir(clean) as tmp:
            _scan_all(files, served, settings, report, tmp, console)
            unread = [p for p in report.problems if p.startswith("corpus file")]
            if unread:
                raise LangsampError(f"--write-clean {clean}: not written, {len(unread)} corpus file(s) could not be "
                                    f"read ({unread[0]}); fix them and rerun")
            _write_clean_record(tmp, report, settings, corpus)
        report.clean_dir = clean
    report.seconds = time.monotonic() - started
    _write_report(report, settings.output_dir)
    return report


def _corpus_root(settings: ContaminationSettings) -> Path:
    if settings.corpus is None:  # like `pretrain`: the bundled demo corpus
        from langsamp_cli.demo_corpus import demo_corpus_dir

        return Path(demo_corpus_dir())
    corpus = Path(settings.corpus).expanduser()
    if not corpus.is_dir():
        raise LangsampError(f"--corpus {corpus}: no such directory; pass a folder with one xxx_Scrp text file or "
                            "folder per language")
    return corpus


def _check_clean_target(settings: ContaminationSettings, corpus: Path) -> Path | None:
    """OUT must be new, or a clean copy langsamp wrote (with --overwrite), and apart from the corpus."""
    if settings.write_clean is None:
        return None
    out = Path(settings.write_clean).expanduser()
    real_out, real_corpus = out.resolve(), corpus.resolve()
    if real_out == real_corpus or real_corpus in real_out.parents or real_out in real_corpus.parents:
        raise LangsampError(f"--write-clean {out}: inside or around the corpus {corpus}; pick a separate folder")
    if out.exists():
        if read_clean_record(out) is None:
            raise LangsampError(f"--write-clean {out}: exists and is not a clean copy written by langsamp; "
                                "pick a new folder (nothing is deleted)")
        if not settings.overwrite:
            raise LangsampError(f"--write-clean {out}: a clean copy is already there; pass --overwrite to replace it")
    return out


def _language_files(corpus: Path) -> dict[str, list[Path]]:
    from langsamp_cli.pretrain.corpus import find_language_files

    files = find_language_files(corpus)
    if not files:
        raise LangsampError(f"{corpus}: corpus is empty; expected one xxx_Scrp.txt file (or folder) per language")
    return files


def _read_test_sets(against: list[str]) -> tuple[list[TestSets], list[str]]:
    """Every readable ``--against``; an unreadable one is a problem line and the rest go on."""
    sets, problems = [], []
    for value in against:
        task, path = parse_against(value)  # a malformed value or unknown task: nothing sensible to scan
        try:
            found = load_test_sets(task, path)
        except LangsampError as err:
            problems.append(f"test set {err}")
            continue
        sets.append(found)
        problems += [f"test set {task} {lang}: not used: {reason}" for lang, reason in found.problems.items()]
    if not sets:
        raise LangsampError("no --against test set could be read: " + " | ".join(problems))
    return sets, problems


def _serve(files: dict[str, list[Path]], sets: list[TestSets], report: ContaminationReport
           ) -> dict[str, list[tuple[TestSets, str]]]:
    """corpus language -> the (test sets, test language) it is checked against (same id or an alias)."""
    from langsamp_cli.languages import lang_script_aliases

    served: dict[str, list[tuple[TestSets, str]]] = {lang: [] for lang in files}
    for test_sets in sets:
        unserved = []
        for test_lang in test_sets.items:
            names = {test_lang, *lang_script_aliases(test_lang)}
            corpus_langs = [lang for lang in files if lang in names]
            for lang in corpus_langs:
                served[lang].append((test_sets, test_lang))
            if not corpus_langs:
                unserved.append(test_lang)
        if unserved:
            report.test_only[test_sets.task] = sorted(unserved)
            report.problems.append(f"test set {test_sets.task}: {len(unserved)} language(s) with no corpus text, not "
                                   f"checked: {', '.join(sorted(unserved))}")
    for lang, found in served.items():
        if not found:
            report.problems.append(f"corpus {lang}: no test set of this language among the --against sets; "
                                   "not checked")
    return served


# ---------------------------------------------------------------------------------------------- scan


def _scan_all(files: dict[str, list[Path]], served: dict[str, list[tuple[TestSets, str]]],
              settings: ContaminationSettings, report: ContaminationReport, clean: Path | None,
              console: Console) -> None:
    from langsamp_cli.progress import make_progress

    total = sum(_size(p) for lang, paths in files.items() for p in paths if served[lang] or clean)
    with make_progress(console, settings.progress, unit="MB") as progress:
        task = progress.add_task("contamination", total=round(total / 1e6, 1))
        done = 0.0
        for lang, paths in sorted(files.items()):
            scan = LanguageScan(lang, [str(p) for p in paths])
            report.languages[lang] = scan
            index = _index(lang, served[lang], settings.ngram, scan)
            if index is None and clean is None:
                continue  # nothing to look for in this language and nothing to copy
            for path in paths:
                target = clean / path.relative_to(report.corpus) if clean is not None else None
                for read in _scan_file(path, index, scan, target, settings.examples, report):
                    done += read / 1e6
                    progress.update(task, completed=round(done, 1), description=f"contamination {lang}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _index(lang: str, served: list[tuple[TestSets, str]], ngram: int, scan: LanguageScan
           ) -> tuple[LanguageIndex, dict[tuple[str, str], SetResult]] | None:
    if not served:
        scan.note = "no test set of this language"
        return None
    items: list[TestItem] = [item for sets, test_lang in served for item in sets.items[test_lang]]
    index = LanguageIndex.build(items, ngram_length(lang.split("_", 1)[1], ngram))
    rows: dict[tuple[str, str], SetResult] = {}
    for sets, test_lang in served:
        rows[(sets.task, test_lang)] = SetResult(lang, sets.task, test_lang, sets.sources.get(test_lang, ""))
    for number, item in enumerate(items):
        if index.normalised[number]:
            row = rows[(item.task, item.lang_script)]
            row.items += 1
            row.long_items += index.long_enough(number)
    scan.sets = list(rows.values())
    return index, rows


def _scan_file(path: Path, indexed, scan: LanguageScan, target: Path | None, examples: int,
               report: ContaminationReport) -> Iterator[int]:
    """Scan (and copy, without matching lines) one file; yields the bytes read since the last yield."""
    found_whole: dict[tuple[str, str], set[int]] = defaultdict(set)
    found_overlap: dict[tuple[str, str], set[int]] = defaultdict(set)
    line_offset, position = 0, 0
    writer = _open_target(target) if target is not None else None
    try:
        for block, read_to in _read_blocks(path):
            kept, lines, removed = _scan_block(block, indexed, path, line_offset, found_whole, found_overlap,
                                               examples)
            scan.bytes += len(block)
            scan.lines += lines
            scan.matched_lines += removed
            line_offset += lines if block.endswith(b"\n") else lines - 1
            if writer is not None:
                writer.write(kept)
            yield read_to - position
            position = read_to
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        report.problems.append(f"corpus file {path}: cannot read ({err}); its lines after {line_offset} were not "
                               "checked: fix or remove the file")
    finally:
        if writer is not None:
            writer.close()
    if indexed is not None:
        _, rows = indexed
        for key, row in rows.items():
            whole, overlap = found_whole.get(key, set()), found_overlap.get(key, set())
            row.found_whole += len(whole)
            row.found_overlap += len(overlap)
            row.found += len(whole | overlap)


def _open_target(target: Path) -> IO[bytes]:
    target.parent.mkdir(parents=True, exist_ok=True)
    return gzip.open(target, "wb") if target.suffix == ".gz" else open(target, "wb")


def _read_blocks(path: Path) -> Iterator[tuple[bytes, int]]:
    """(block, bytes of the file read so far): blocks of whole lines (a line over MAX_PIECE_BYTES in pieces)."""
    with open(path, "rb") as raw:
        handle = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        if b"\x00" in handle.peek(8192)[:8192] if hasattr(handle, "peek") else False:
            raise OSError("NUL bytes: binary or UTF-16, not UTF-8 text")
        carry = b""
        while True:
            data = handle.read(BLOCK_BYTES)
            if not data:
                if carry:
                    yield carry, raw.tell()
                return
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) < MAX_PIECE_BYTES:
                    carry = data
                    continue
                cut = len(data)
            yield data[:cut], raw.tell()
            carry = data[cut:]


def _scan_block(block: bytes, indexed, path: Path, line_offset: int, found_whole, found_overlap,
                examples: int) -> tuple[bytes, int, int]:
    """(the block without its matching lines, lines in it, lines removed)."""
    ends_line = block.endswith(b"\n")
    lines = block.count(b"\n") + (not ends_line)
    if indexed is None:
        return block, lines, 0
    index, rows = indexed
    text = block.decode("utf-8", "surrogateescape")
    matches = match_block(index, normalise_block(text if ends_line else text + "\n"))
    if not matches.whole and not matches.overlap:
        return block, lines, 0
    parts = block.split(b"\n")
    for kind, pairs, found in (("whole line", matches.whole, found_whole), ("overlap", matches.overlap, found_overlap)):
        for line, item_number in pairs:
            item = index.items[item_number]
            key = (item.task, item.lang_script)
            found[key].add(item_number)
            row = rows[key]
            if len(row.examples) < examples and all(e["item_id"] != item.item_id for e in row.examples):
                row.examples.append({"kind": kind, "item_id": item.item_id, "item": item.text[:EXAMPLE_CHARS],
                                     "file": str(path), "line": line_offset + line + 1,
                                     "corpus_line": parts[line].decode("utf-8", "replace").strip()[:EXAMPLE_CHARS]})
    drop = matches.lines
    if ends_line:
        parts.pop()
    kept = b"".join(part + b"\n" for number, part in enumerate(parts) if number not in drop)
    if not ends_line and (len(parts) - 1) not in drop:
        kept = kept[:-1]  # the file's last line had no newline; the copy's has none either
    return kept, lines, len(drop)


# ---------------------------------------------------------------------------------------------- outputs


def _write_clean_record(folder: Path, report: ContaminationReport, settings: ContaminationSettings,
                        corpus: Path) -> None:
    from datetime import datetime, timezone

    from langsamp_cli.io_utils import atomic_write_json

    output = Path(settings.output_dir).expanduser().resolve()
    atomic_write_json(folder / CLEAN_RECORD, {
        "format": CLEAN_FORMAT, "version": 1, "source_corpus": str(corpus.resolve()),
        "report": str(output / REPORT_JSON), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "against": [{"task": a["task"], "path": str(Path(a["path"]).resolve())} for a in report.against],
        "ngram": report.ngram,
        "removed_lines": sum(s.matched_lines for s in report.languages.values()),
        "languages": {lang: {"lines": s.lines, "removed": s.matched_lines, "checked": bool(s.sets)}
                      for lang, s in report.languages.items()},
    })


def _write_report(report: ContaminationReport, output_dir: Path) -> None:
    import csv
    import io

    from langsamp_cli.io_utils import atomic_write_json, atomic_write_text

    output_dir = Path(output_dir).expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    report.report_json = atomic_write_json(output_dir / REPORT_JSON, report.to_json())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["corpus_lang", "task", "test_lang", "items", "long_items", "found_whole", "found_overlap",
                     "found", "share", "corpus_lines", "removed_lines", "source"])
    for row in report.rows:
        scan = report.languages[row.corpus_lang]
        writer.writerow([row.corpus_lang, row.task, row.test_lang, row.items, row.long_items, row.found_whole,
                         row.found_overlap, row.found, f"{row.share:.6f}", scan.lines, scan.matched_lines, row.source])
    report.report_csv = atomic_write_text(output_dir / REPORT_CSV, buffer.getvalue())


def report_table(report: ContaminationReport, limit: int | None = None):
    """Rows worst first (a rich Table)."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"contamination of {report.corpus}", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("corpus", "task", "test set", "items", "whole line", "overlap", "found", "share", "lines matched"):
        table.add_column(name, justify="left" if name in ("corpus", "task", "test set") else "right", no_wrap=True)
    for row in report.rows[:limit]:
        table.add_row(row.corpus_lang, row.task, row.test_lang, f"{row.items:,}", f"{row.found_whole:,}",
                      f"{row.found_overlap:,}", f"{row.found:,}", f"{row.share:.1%}",
                      f"{report.languages[row.corpus_lang].matched_lines:,}")
    return table
