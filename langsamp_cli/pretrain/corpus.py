"""The pretraining corpus: files per language-script, their sizes, temperature sampling, chunking.

Layout (Glot500-c style): one UTF-8 text file (``.txt``, ``.gz`` or no suffix) or one sub-directory of such
files per language-script, named ``xxx_Scrp`` (ISO 639-3 + ISO 15924), one sentence per line. A name that is
only a language code (``rus.txt``, ``de/``) gets the majority script of its first lines. Empty lines are
ignored; lines that are not valid UTF-8 are skipped and counted per file.

Hostile or broken input is bounded and reported, never trusted:

- A line longer than ``MAX_LINE_BYTES`` (64 KiB) is read as several pieces of at most that size, cut at a
  space/tab in the second half of the piece (else at a UTF-8 character boundary); each piece counts as a
  line. Memory per line stays bounded however long the line is; the number of such lines is reported.
- A file that is mostly not UTF-8 (more undecodable than decodable lines, or NUL bytes in its first 8 KiB:
  binary or UTF-16) is left out and reported; a language with no file left is skipped with that reason.
- A symlinked folder is followed only at the top level and only when it does not contain the corpus itself
  (``deu_Latn -> ../`` is an error); symlinked folders inside a language folder are not followed; one file
  reached under two language names is an error.
- A file whose detected script (:func:`langsamp_cli.languages.detect_script` on its first lines) disagrees
  with its name gets a one-line warning.
- A language with fewer than ``MIN_LANGUAGE_LINES`` (100) training lines that the sampler up-samples
  (its share of chunks above its share of lines) gets a one-line warning naming both shares: it is kept
  (tiny test corpora are legitimate) but never silently repeated. See :func:`corpus_notes`.

A training instance is ``<s> + max_seq_len-2 tokens + </s>`` cut from the running token stream of ONE
language-script (sentences tokenized without special tokens and concatenated; the stream wraps around at the
end of the language); ``--chunking official`` lays chunks out as the official pipeline does instead (each
sentence in its own ``<s> ... </s>``, groups of 1,000 lines, each group's remainder dropped: :class:`LineGroups`).
The language of each instance is drawn from a multinomial with p_i ∝ n_i ** alpha,
where n_i is the number of training sentences of language-script i. The sampler's state (its RNG and every
language's cursor) is a plain dict, so a resumed run continues the exact same stream.

Why one module of about 700 lines: finding, reading and chunking the files share the bounds on hostile input
above (line pieces, skipped bytes, positions a resume restores), and the corpus's names are imported by the
contamination scan, ``tokenizer extend``, the experiment and the benchmarks; its sections (files, sampling,
line reading, token streams, sampler) follow the path of a line from disk to a chunk.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from rich import box
from rich.table import Table

from langsamp_cli.contamination.record import CLEAN_RECORD
from langsamp_cli.errors import LangsampError
from langsamp_cli.languages import LANG_SCRIPT_RE

Encoder = Callable[[list[str]], list[list[int]]]
ENCODE_BATCH_LINES = 512
MAX_LINE_BYTES = 1 << 16       # longer lines are read (and tokenized) in pieces of at most this many bytes
READ_BLOCK_BYTES = 1 << 20     # a streamed language reads at most about this much text per refill
MIN_LANGUAGE_LINES = 100       # fewer training lines and up-sampled: warned about (corpus_notes)
OFFICIAL_GROUP_LINES = 1000    # --chunking official: datasets.map(group_texts, batched=True)'s default batch size
SCRIPT_SAMPLE_LINES = 50       # first lines of a file whose script is checked against its name
_NON_SCRIPTS = {"Zyyy", "Zinh", "Zzzz"}


@dataclass
class LanguageSource:
    """The files of one language-script and what a scan found in them."""

    lang_script: str
    files: list[Path]
    lines: int = 0                                           # non-empty, decodable
    undecodable: dict[str, int] = field(default_factory=dict)  # file -> skipped lines
    num_bytes: int = 0
    heldout_lines: int = 0                                   # first lines reserved for evaluation
    long_lines: dict[str, int] = field(default_factory=dict)   # file -> lines over MAX_LINE_BYTES (read in pieces)

    @property
    def lang(self) -> str:
        return self.lang_script.split("_", 1)[0]

    @property
    def script(self) -> str:
        return self.lang_script.split("_", 1)[1]

    @property
    def train_lines(self) -> int:
        return self.lines - self.heldout_lines


@dataclass
class Corpus:
    root: Path
    sources: dict[str, LanguageSource]        # sorted by id; only languages with training lines
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason
    skipped_files: dict[str, str] = field(default_factory=dict)  # file -> why it was left out
    warnings: list[str] = field(default_factory=list)  # e.g. a file whose script disagrees with its name

    @property
    def languages(self) -> list[str]:
        return list(self.sources)


# ---------------------------------------------------------------------------------------------- files


def _strip_text_suffix(name: str) -> str:
    for suffix in (".txt.gz", ".gz", ".txt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def language_id_from_name(name: str) -> str | None:
    """``eng_Latn.txt.gz`` -> ``eng_Latn``; None when the name is not a language-script id."""
    name = _strip_text_suffix(name)
    return name if LANG_SCRIPT_RE.match(name) else None


def _id_from_bare_language(entry: Path) -> str | None:
    """``rus.txt`` / ``ru/`` -> ``rus_Cyrl``: a name that is only a language gets the script detected in its text."""
    from langsamp_cli.languages import parse_lang_script

    stem = _strip_text_suffix(entry.name)
    if not re.fullmatch(r"[A-Za-z]{2,3}", stem):
        return None
    sample = _text_sample(_text_files(entry) if entry.is_dir() else [entry])
    try:
        return parse_lang_script(stem, text_sample=sample or None).id
    except LangsampError:
        return None


def _text_sample(files: list[Path], max_lines: int = 200) -> str:
    lines: list[str] = []
    for path in files:
        reader = LineReader([path])
        try:
            found, _, _ = reader.read((0, 0), max_lines - len(lines))
        except (OSError, EOFError, zlib.error):
            found = []
        finally:
            reader.close()
        lines.extend(found)
        if len(lines) >= max_lines:
            break
    return "\n".join(lines)


def _text_files(directory: Path) -> list[Path]:
    """Files under ``directory``; symlinked sub-folders are not followed (they could lead anywhere, even back)."""
    found = []
    for folder, subfolders, names in os.walk(directory, followlinks=False):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [Path(folder) / n for n in names if not n.startswith(".") and (Path(folder) / n).is_file()]
    return sorted(found)


def _check_link(entry: Path, root: Path) -> None:
    """A symlinked language folder must not contain the corpus (``deu_Latn -> ../`` would read every language)."""
    if not (entry.is_symlink() and entry.is_dir()):
        return
    target, real_root = entry.resolve(), root.resolve()
    if target == real_root or target in real_root.parents:
        raise LangsampError(f"{entry}: symlink to {target}, a folder that contains the corpus itself; "
                            "a language entry must hold only that language's text: remove or fix the link")


def find_language_files(root: Path) -> dict[str, list[Path]]:
    """Map each language-script id to its files; a badly named entry is a one-line error."""
    if not root.is_dir():
        raise LangsampError(f"{root}: corpus directory not found; "
                            "pass --corpus DIR with one xxx_Scrp file per language")
    files: dict[str, list[Path]] = {}
    owner: dict[Path, tuple[str, Path]] = {}  # real file -> (language, path) that first claimed it
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or (entry.name == CLEAN_RECORD and entry.is_file()):
            continue  # the record of a clean copy (`contamination --write-clean`) is not a language
        _check_link(entry, root)
        lang_script = language_id_from_name(entry.name) or _id_from_bare_language(entry)
        if lang_script is None:
            raise LangsampError(
                f"{entry}: name is not a language-script id like eng_Latn (ISO 639-3 + '_' + ISO 15924); "
                "rename it or move it out of the corpus directory")
        for path in _text_files(entry) if entry.is_dir() else [entry]:
            real = path.resolve()
            first_lang, first_path = owner.setdefault(real, (lang_script, path))
            if first_lang != lang_script:
                raise LangsampError(f"{path}: the same file as {first_path} ({first_lang}) but filed as "
                                    f"{lang_script}; one text cannot be two languages: remove the link or copy")
            if first_path == path:
                files.setdefault(lang_script, []).append(path)
    return files


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def decode_line(raw: bytes) -> str | None:
    """The stripped text of one line; '' for blank lines; None when it is not UTF-8."""
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def read_piece(handle: IO[bytes], carry: bytes = b"") -> tuple[bytes, bytes, bool]:
    """The next line of ``handle`` (``carry``: bytes already read past the last piece), at most MAX_LINE_BYTES.

    Returns (piece, new carry, cut): ``cut`` is True when the piece ends inside an over-long line, which is
    then cut at its last space/tab in the second half of the piece, or else at a UTF-8 character boundary.
    ``piece`` is b"" only at the end of the file.
    """
    data = carry + handle.readline(MAX_LINE_BYTES - len(carry))
    if len(data) < MAX_LINE_BYTES or data.endswith(b"\n"):
        return data, b"", False
    cut = max(data.rfind(b" ", MAX_LINE_BYTES // 2), data.rfind(b"\t", MAX_LINE_BYTES // 2)) + 1
    if cut == 0:
        cut = next((i for i in range(len(data) - 1, len(data) - 4, -1) if data[i] & 0xC0 != 0x80), len(data))
    return data[:cut], data[cut:], True


@dataclass
class FileCount:
    good: int = 0          # non-empty decodable lines (pieces of over-long lines count one each)
    bad: int = 0           # undecodable lines
    long_lines: int = 0    # lines over MAX_LINE_BYTES
    binary: bool = False   # NUL bytes near the start: not UTF-8 text (binary or UTF-16)


def _count_file(path: Path) -> FileCount:
    """Count what :class:`LineReader` will yield, one bounded piece at a time."""
    count = FileCount()
    try:
        with open_binary(path) as handle:
            head = handle.read(8192)
            if b"\x00" in head:
                count.binary = True
                return count
            handle.seek(0)
            carry, in_long_line = b"", False
            while True:
                raw, carry, cut = read_piece(handle, carry)
                if not raw:
                    break
                count.long_lines += cut and not in_long_line
                in_long_line = cut
                text = decode_line(raw)
                count.bad += text is None
                count.good += bool(text)
    except (OSError, EOFError, zlib.error) as err:
        raise LangsampError(f"{path}: cannot read ({err}); fix or remove the file") from None
    return count


def _unusable_reason(count: FileCount) -> str | None:
    if count.binary:
        return "not UTF-8 text (NUL bytes: binary or UTF-16); convert it to UTF-8 or remove it"
    if count.bad > count.good:
        return f"mostly not UTF-8 ({count.bad} undecodable vs {count.good} usable lines); left out"
    return None


def scripts_agree(named: str, detected: str) -> bool:
    """Whether text detected as ``detected`` fits a name saying ``named`` (Han variants, Japanese, Korean)."""
    han = {"Hani", "Hans", "Hant"}
    families = [han | {"Jpan"}, han | {"Kore", "Hang"}]
    return named == detected or any(named in family and detected in family for family in families)


def _script_warning(lang_script: str, path: Path) -> str | None:
    from langsamp_cli.languages import detect_script

    sample = _text_sample([path], SCRIPT_SAMPLE_LINES)
    try:
        detected = detect_script(sample) if sample else None
    except LangsampError:
        return None
    named = lang_script.split("_", 1)[1]
    if detected is None or detected in _NON_SCRIPTS or scripts_agree(named, detected):
        return None
    return (f"warning: {path}: text is mostly {detected} script but the file is filed as {lang_script}; "
            "check the file or its name")


def scan_corpus(root: str | Path, languages: list[str] | None = None, eval_lines: int = 0) -> Corpus:
    """Find, count and validate the corpus; languages with no usable line are skipped with a reason."""
    root = Path(root)
    found = find_language_files(root)
    if not found:
        raise LangsampError(f"{root}: corpus is empty; add one xxx_Scrp.txt file (one sentence per line) per language")
    if languages is not None:
        missing = sorted(set(languages) - set(found))
        if missing:
            raise LangsampError(f"{root}: no data for requested language(s) {', '.join(missing)}; "
                                f"the corpus has {', '.join(sorted(found))}")
        found = {lang: found[lang] for lang in sorted(languages)}
    sources, skipped, skipped_files, warnings = {}, {}, {}, []
    for lang_script, files in sorted(found.items()):
        source = LanguageSource(lang_script, [])
        for path in files:
            count = _count_file(path)
            reason = _unusable_reason(count)
            if reason:
                skipped_files[str(path)] = reason
                continue
            source.files.append(path)
            source.num_bytes += path.stat().st_size
            source.lines += count.good
            if count.bad:
                source.undecodable[str(path)] = count.bad
            if count.long_lines:
                source.long_lines[str(path)] = count.long_lines
            warning = _script_warning(lang_script, path) if count.good else None
            if warning:
                warnings.append(warning)
        source.heldout_lines = min(eval_lines, source.lines // 10)
        if not source.files:
            skipped[lang_script] = "no usable file (" + "; ".join(skipped_files[str(p)] for p in files) + ")"
            continue
        if source.train_lines <= 0:
            skipped[lang_script] = "no non-empty UTF-8 line" if not source.lines else "too few lines"
            continue
        sources[lang_script] = source
    if not sources:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise LangsampError(f"{root}: no usable text in the corpus ({reasons})")
    return Corpus(root, sources, skipped, skipped_files, warnings)


def corpus_notes(corpus: Corpus, probs: np.ndarray | None = None) -> list[str]:
    """One line per thing the user should know about the corpus (printed before training)."""
    notes = [f"skipped file {path}: {reason}" for path, reason in corpus.skipped_files.items()]
    for source in corpus.sources.values():
        notes += [f"skipped {count} undecodable line(s) in {path}" for path, count in source.undecodable.items()]
        notes += [f"note: {path}: {count} line(s) over {MAX_LINE_BYTES:,} bytes, read in pieces of at most that size"
                  for path, count in source.long_lines.items()]
    notes += corpus.warnings
    if probs is not None:
        total = sum(s.train_lines for s in corpus.sources.values())
        for (lang_script, source), prob in zip(corpus.sources.items(), probs):
            share = source.train_lines / total
            if source.train_lines < MIN_LANGUAGE_LINES and prob > share:
                notes.append(f"warning: {lang_script} has only {source.train_lines} training line(s) (under "
                             f"{MIN_LANGUAGE_LINES}) but is sampled as {prob:.1%} of chunks ({share:.1%} of the "
                             "lines): its text repeats; add text, leave it out with --languages, or raise --alpha")
    return notes


# ------------------------------------------------------------------------------------------ sampling


def sampling_probabilities(sizes: list[int] | np.ndarray, alpha: float) -> np.ndarray:
    """Multinomial with temperature: p_i = n_i**alpha / sum_j n_j**alpha (alpha=1: proportional, 0: uniform)."""
    weights = np.asarray(sizes, dtype=np.float64) ** alpha
    return weights / weights.sum()


def sizes_table(corpus: Corpus, probs: np.ndarray) -> Table:
    """Per language-script sizes and sampling shares (shown before training)."""
    table = Table(title=f"corpus {corpus.root}", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("language", "files", "lines", "held out", "bad lines", "lines %", "sampled %"):
        table.add_column(name, justify="left" if name == "language" else "right", no_wrap=True)
    total = sum(s.train_lines for s in corpus.sources.values())
    for (lang_script, source), prob in zip(corpus.sources.items(), probs):
        table.add_row(lang_script, str(len(source.files)), f"{source.lines:,}", f"{source.heldout_lines:,}",
                      f"{sum(source.undecodable.values()):,}", f"{source.train_lines / total:.1%}", f"{prob:.1%}")
    for lang_script, reason in corpus.skipped.items():
        table.add_row(lang_script, "", "", "", "", "skipped", reason)
    return table


# ------------------------------------------------------------------------------------- line reading


Position = tuple[int, int]  # (file index, byte offset in the decompressed file)


class LineReader:
    """Non-empty decodable lines of a list of files, from a (file, offset) position that can be saved."""

    def __init__(self, files: list[Path]):
        self.files = files
        self._handle: IO[bytes] | None = None
        self._handle_index = -1
        self._carry = b""  # read from the handle but not yet returned (the rest of an over-long line)

    def _seek(self, position: Position) -> IO[bytes]:
        index, offset = position
        if (self._handle is None or self._handle_index != index
                or self._handle.tell() - len(self._carry) != offset):
            self.close()
            self._handle, self._handle_index = open_binary(self.files[index]), index
            self._handle.seek(offset)
        return self._handle

    def read(self, position: Position, max_lines: int,
             max_chars: int | None = None) -> tuple[list[str], Position, bool]:
        """Up to ``max_lines`` lines (and about ``max_chars`` characters) from ``position``;
        returns (lines, next position, reached the end). A line is at most MAX_LINE_BYTES (see read_piece)."""
        lines: list[str] = []
        chars = 0
        index, offset = position
        while len(lines) < max_lines and (max_chars is None or chars < max_chars):
            handle = self._seek((index, offset))
            raw, self._carry, _ = read_piece(handle, self._carry)
            if not raw:
                if index + 1 == len(self.files):
                    return lines, (index, offset), True
                index, offset = index + 1, 0
                continue
            offset = handle.tell() - len(self._carry)
            text = decode_line(raw)
            if text:
                lines.append(text)
                chars += len(text)
        return lines, (index, offset), False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle, self._handle_index, self._carry = None, -1, b""


def skip_lines(reader: LineReader, count: int) -> Position:
    """The position just after the first ``count`` non-empty lines (the held-out part)."""
    position: Position = (0, 0)
    while count > 0:
        lines, position, at_end = reader.read(position, min(count, 4096))
        count -= len(lines)
        if at_end:
            break
    return position


def read_heldout(source: LanguageSource) -> list[str]:
    """A language's held-out lines: its first ``heldout_lines`` non-empty lines (evaluation only)."""
    reader = LineReader(source.files)
    lines, _, _ = reader.read((0, 0), source.heldout_lines)
    reader.close()
    return lines


def read_training(source: LanguageSource, count: int) -> list[str]:
    """A language's first ``count`` training lines (those after the held-out ones)."""
    reader = LineReader(source.files)
    lines, _, _ = reader.read(skip_lines(reader, source.heldout_lines), count)
    reader.close()
    return lines


# ------------------------------------------------------------------------------------ token streams


class LineGroups:
    """Token ids of consecutive lines, laid out for the chunker.

    ``block=None`` (--chunking langsamp): the lines' ids run on unchanged. ``block=n`` (--chunking
    official): lines are taken in groups of OFFICIAL_GROUP_LINES, counted from the language's first
    training line (as the official ``datasets.map(group_texts, batched=True)`` batches them); each
    group's ids are concatenated and cut to a multiple of ``n``, the rest of the group dropped, so
    every ``n``-token block lies inside one group. The last, shorter group is cut the same way
    (:meth:`finish`). The open group is part of the state, so a resumed run continues exactly.
    """

    def __init__(self, block: int | None, group_lines: int = OFFICIAL_GROUP_LINES):
        self.block, self.group_lines = block, group_lines
        self.pending: list[int] = []   # ids of the open group's lines so far
        self.lines = 0                 # lines in the open group

    def feed(self, per_line: list[list[int]]) -> list[int]:
        """The ids ready for the stream after these lines (in order)."""
        if self.block is None:
            return [t for ids in per_line for t in ids]
        out: list[int] = []
        for ids in per_line:
            self.pending.extend(ids)
            self.lines += 1
            if self.lines == self.group_lines:
                out.extend(self.finish())
        return out

    def finish(self) -> list[int]:
        """End of the language's text: close the open group (its whole blocks only)."""
        if self.block is None:
            return []
        kept = len(self.pending) - len(self.pending) % self.block
        out, self.pending, self.lines = self.pending[:kept], [], 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"pending": list(self.pending), "lines": self.lines}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        state = state or {"pending": [], "lines": 0}
        self.pending, self.lines = list(state["pending"]), int(state["lines"])


def _no_blocks(source: LanguageSource, block: int | None) -> LangsampError:
    if block is None:
        return LangsampError(f"{source.files[0]}: the tokenizer produced no tokens for {source.lang_script}; "
                             "check the tokenizer or drop the language")
    return LangsampError(f"{source.files[0]}: --chunking official keeps no block of {source.lang_script}: no group of "
                         f"{OFFICIAL_GROUP_LINES:,} lines has {block} tokens; use --chunking langsamp, a smaller "
                         "--max-seq-len, or drop the language")


def encode_batches(lines: list[str]) -> Iterator[list[str]]:
    """Consecutive batches of at most ENCODE_BATCH_LINES lines and about READ_BLOCK_BYTES characters
    (the tokenizer's memory grows with the text it gets at once)."""
    batch: list[str] = []
    chars = 0
    for line in lines:
        if batch and (len(batch) == ENCODE_BATCH_LINES or chars + len(line) > READ_BLOCK_BYTES):
            yield batch
            batch, chars = [], 0
        batch.append(line)
        chars += len(line)
    if batch:
        yield batch


class CachedLanguage:
    """A small language: tokenized once, kept as one flat array; the cursor is the whole data position."""

    def __init__(self, source: LanguageSource, encode: Encoder, block: int | None = None):
        self.source, self.encode, self.block = source, encode, block
        self._tokens: np.ndarray | None = None
        self.cursor = 0
        self.epoch = 0

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            reader = LineReader(self.source.files)
            lines, _, _ = reader.read(skip_lines(reader, self.source.heldout_lines), self.source.train_lines)
            reader.close()
            # One int32 array per batch: a list of Python ints for the whole language would take ~9x the memory.
            groups = LineGroups(self.block)
            arrays = [np.asarray(groups.feed(self.encode(batch)), dtype=np.int32) for batch in encode_batches(lines)]
            arrays.append(np.asarray(groups.finish(), dtype=np.int32))
            del lines
            self._tokens = np.concatenate(arrays)
            if not len(self._tokens):
                raise _no_blocks(self.source, self.block)
        return self._tokens

    def take(self, n: int) -> list[int]:
        out: list[int] = []
        while len(out) < n:
            piece = self.tokens[self.cursor:self.cursor + n - len(out)]
            out.extend(piece.tolist())
            self.cursor += len(piece)
            if self.cursor == len(self.tokens):
                self.cursor, self.epoch = 0, self.epoch + 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cursor, self.epoch = int(state["cursor"]), int(state["epoch"])


class StreamingLanguage:
    """A large language: read and tokenized block by block; the position is (file, offset, leftover tokens)."""

    def __init__(self, source: LanguageSource, encode: Encoder, block_lines: int = 256, block: int | None = None):
        self.source, self.encode, self.block_lines = source, encode, block_lines
        self.reader = LineReader(source.files)
        self.start: Position = skip_lines(self.reader, source.heldout_lines)
        self.position: Position = self.start
        self.buffer: list[int] = []
        self.epoch = 0
        self.groups = LineGroups(block)
        self._pass_tokens = 0  # ids added to the buffer since the pass began (not saved: a resume restarts it)

    def _refill(self) -> None:
        if tuple(self.position) == tuple(self.start):
            self._pass_tokens = 0
        lines, self.position, at_end = self.reader.read(self.position, self.block_lines, READ_BLOCK_BYTES)
        ready = self.groups.feed(self.encode(lines) if lines else [])
        if at_end:
            ready += self.groups.finish()
        self.buffer.extend(ready)
        self._pass_tokens += len(ready)
        if at_end:
            self.position, self.epoch = self.start, self.epoch + 1
            # A whole pass that gave no id: the language has no text, or (official chunking) no whole block.
            if not self._pass_tokens:
                raise _no_blocks(self.source, self.groups.block)

    def take(self, n: int) -> list[int]:
        while len(self.buffer) < n:
            self._refill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def state_dict(self) -> dict[str, Any]:
        state = {"position": list(self.position), "buffer": list(self.buffer), "epoch": self.epoch}
        if self.groups.block is not None:
            state["group"] = self.groups.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = (int(state["position"][0]), int(state["position"][1]))
        self.buffer, self.epoch = list(state["buffer"]), int(state["epoch"])
        self.groups.load_state_dict(state.get("group"))
        self._pass_tokens = len(self.buffer)  # resumed mid-pass: what the pass gave so far is at least this


# ------------------------------------------------------------------------------------------ sampler


@dataclass
class Example:
    input_ids: list[int]
    lang_script: str
    lang_id: int
    script_id: int


CHUNKING = ("langsamp", "official")
# How a chunk is laid out (the --chunking choice):
# - "langsamp" (default): the sentences' tokens run on, and each chunk gets one <s> ... </s> pair around
#   max_seq_len - 2 tokens, so every chunk starts as an input at evaluation time does;
# - "official": as the official (Glot500 run_mlm-based) pipeline: every sentence is tokenized with its
#   own <s> ... </s>, the sentences of each group of 1,000 lines run on, and a chunk is the next
#   max_seq_len tokens of the group, which may start or end in the middle of a sentence; the group's
#   last tokens that do not fill a chunk are dropped (LineGroups).


def make_encoder(tokenizer: Any, chunking: str = "langsamp") -> Encoder:
    """Sentences -> token ids: without special tokens ("langsamp": the chunk gets one <s> ... </s> pair),
    or each sentence as <s> ... </s> ("official")."""
    with_specials = _check_chunking(chunking) == "official"

    def encode(lines: list[str]) -> list[list[int]]:
        return tokenizer(lines, add_special_tokens=with_specials)["input_ids"]
    return encode


def _check_chunking(chunking: str) -> str:
    if chunking not in CHUNKING:
        raise LangsampError(f"--chunking {chunking}: choose one of {', '.join(CHUNKING)}")
    return chunking


def chunk_layout(tokenizer: Any, max_seq_len: int, chunking: str = "langsamp") -> tuple[int, list[int], list[int]]:
    """(tokens taken from the stream per chunk, ids put before them, ids put after them)."""
    if _check_chunking(chunking) == "official":
        return max_seq_len, [], []
    bos, eos = chunk_markers(tokenizer)
    return max_seq_len - 2, [bos], [eos]


def chunk_markers(tokenizer: Any) -> tuple[int, int]:
    """The ids wrapped around every chunk: <s> ... </s> (XLM-R), [CLS] ... [SEP] for BERT-style vocabularies."""
    if tokenizer.bos_token_id is not None and tokenizer.eos_token_id is not None:
        return tokenizer.bos_token_id, tokenizer.eos_token_id
    return tokenizer.cls_token_id, tokenizer.sep_token_id


class ChunkSampler:
    """An endless, resumable stream of one-language chunks; each rank seeds it with (seed, rank)."""

    def __init__(self, corpus: Corpus, tokenizer: Any, lang2id: dict[str, int], script2id: dict[str, int],
                 max_seq_len: int, alpha: float, seed: int, rank: int = 0, cache_bytes: int = 64 * 2**20,
                 chunking: str = "langsamp"):
        self.corpus, self.lang2id, self.script2id = corpus, lang2id, script2id
        self.languages = corpus.languages
        self.probs = sampling_probabilities([corpus.sources[k].train_lines for k in self.languages], alpha)
        self.body_len, self.head, self.tail = chunk_layout(tokenizer, max_seq_len, chunking)
        self.encode = make_encoder(tokenizer, chunking)
        self.group_block = self.body_len if chunking == "official" else None
        self.cache_bytes = cache_bytes
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rank])))
        self.streams: dict[str, CachedLanguage | StreamingLanguage] = {}
        self.counts: Counter[str] = Counter()

    def stream(self, lang_script: str) -> CachedLanguage | StreamingLanguage:
        if lang_script not in self.streams:
            source = self.corpus.sources[lang_script]
            cached = source.num_bytes <= self.cache_bytes
            kind = CachedLanguage if cached else StreamingLanguage
            self.streams[lang_script] = kind(source, self.encode, block=self.group_block)
        return self.streams[lang_script]

    def next_example(self) -> Example:
        lang_script = self.languages[self.rng.choice(len(self.languages), p=self.probs)]
        self.counts[lang_script] += 1
        body = self.stream(lang_script).take(self.body_len)
        lang, script = lang_script.split("_", 1)
        return Example([*self.head, *body, *self.tail], lang_script, self.lang2id[lang], self.script2id[script])

    def next_batch(self, size: int) -> list[Example]:
        return [self.next_example() for _ in range(size)]

    def __iter__(self) -> Iterator[Example]:
        while True:
            yield self.next_example()

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "counts": dict(self.counts),
                "streams": {k: s.state_dict() for k, s in self.streams.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.counts = Counter(state["counts"])
        for lang_script, stream_state in state["streams"].items():
            if lang_script in self.corpus.sources:
                self.stream(lang_script).load_state_dict(stream_state)


def heldout_examples(corpus: Corpus, tokenizer: Any, lang2id: dict[str, int], script2id: dict[str, int],
                     max_seq_len: int, max_chunks: int, chunking: str = "langsamp") -> dict[str, list[Example]]:
    """Per language, up to ``max_chunks`` chunks cut from its held-out first lines (never trained on)."""
    encode = make_encoder(tokenizer, chunking)
    body, head, tail = chunk_layout(tokenizer, max_seq_len, chunking)
    out: dict[str, list[Example]] = {}
    for lang_script, source in corpus.sources.items():
        if not source.heldout_lines:
            continue
        lines = read_heldout(source)
        groups = LineGroups(body if chunking == "official" else None)
        tokens = [t for batch in encode_batches(lines) for t in groups.feed(encode(batch))] + groups.finish()
        lang, script = lang_script.split("_", 1)
        out[lang_script] = [Example([*head, *tokens[i:i + body], *tail], lang_script, lang2id[lang], script2id[script])
                            for i in range(0, len(tokens), body)][:max_chunks]
    return out
