"""The pretraining corpus: files per language-script, their sizes, temperature sampling, chunking.

Layout (Glot500-c style): one UTF-8 text file (``.txt``, ``.gz`` or no suffix) or one sub-directory of such
files per language-script, named ``xxx_Scrp`` (ISO 639-3 + ISO 15924), one sentence per line. A name that is
only a language code (``rus.txt``, ``de/``) gets the majority script of its first lines. Empty lines are
ignored; lines that are not valid UTF-8 are skipped and counted per file.

A training instance is ``<s> + max_seq_len-2 tokens + </s>`` cut from the running token stream of ONE
language-script (sentences tokenized without special tokens and concatenated; the stream wraps around at the
end of the language). The language of each instance is drawn from a multinomial with p_i ∝ n_i ** alpha,
where n_i is the number of training sentences of language-script i. The sampler's state (its RNG and every
language's cursor) is a plain dict, so a resumed run continues the exact same stream.
"""

from __future__ import annotations

import gzip
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

from langsamp_cli.errors import LangsampError

LANG_SCRIPT_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
Encoder = Callable[[list[str]], list[list[int]]]
ENCODE_BATCH_LINES = 512


@dataclass
class LanguageSource:
    """The files of one language-script and what a scan found in them."""

    lang_script: str
    files: list[Path]
    lines: int = 0                                           # non-empty, decodable
    undecodable: dict[str, int] = field(default_factory=dict)  # file -> skipped lines
    num_bytes: int = 0
    heldout_lines: int = 0                                   # first lines reserved for evaluation

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
        with open_binary(path) as handle:
            for raw in handle:
                text = decode_line(raw)
                if text:
                    lines.append(text)
                if len(lines) >= max_lines:
                    return "\n".join(lines)
    return "\n".join(lines)


def _text_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))


def find_language_files(root: Path) -> dict[str, list[Path]]:
    """Map each language-script id to its files; a badly named entry is a one-line error."""
    if not root.is_dir():
        raise LangsampError(f"{root}: corpus directory not found; "
                            "pass --corpus DIR with one xxx_Scrp file per language")
    files: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        lang_script = language_id_from_name(entry.name) or _id_from_bare_language(entry)
        if lang_script is None:
            raise LangsampError(
                f"{entry}: name is not a language-script id like eng_Latn (ISO 639-3 + '_' + ISO 15924); "
                "rename it or move it out of the corpus directory")
        files.setdefault(lang_script, []).extend(_text_files(entry) if entry.is_dir() else [entry])
    return files


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def decode_line(raw: bytes) -> str | None:
    """The stripped text of one line; '' for blank lines; None when it is not UTF-8."""
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None


def _count_file(path: Path) -> tuple[int, int]:
    """(non-empty decodable lines, undecodable lines), reading in ~1 MB blocks."""
    good = bad = 0
    try:
        with open_binary(path) as handle:
            while block := handle.readlines(1 << 20):
                try:
                    text = b"".join(block).decode("utf-8")
                    good += sum(1 for line in text.splitlines() if line.strip())
                except UnicodeDecodeError:
                    for raw in block:
                        text_line = decode_line(raw)
                        bad += text_line is None
                        good += bool(text_line)
    except (OSError, EOFError, zlib.error) as err:
        raise LangsampError(f"{path}: cannot read ({err}); fix or remove the file") from None
    return good, bad


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
    sources, skipped = {}, {}
    for lang_script, files in sorted(found.items()):
        source = LanguageSource(lang_script, files, num_bytes=sum(f.stat().st_size for f in files))
        for path in files:
            good, bad = _count_file(path)
            source.lines += good
            if bad:
                source.undecodable[str(path)] = bad
        source.heldout_lines = min(eval_lines, source.lines // 10)
        if source.train_lines <= 0:
            skipped[lang_script] = "no non-empty UTF-8 line" if not source.lines else "too few lines"
            continue
        sources[lang_script] = source
    if not sources:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise LangsampError(f"{root}: no usable text in the corpus ({reasons})")
    return Corpus(root, sources, skipped)


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

    def _seek(self, position: Position) -> IO[bytes]:
        index, offset = position
        if self._handle is None or self._handle_index != index or self._handle.tell() != offset:
            self.close()
            self._handle, self._handle_index = open_binary(self.files[index]), index
            self._handle.seek(offset)
        return self._handle

    def read(self, position: Position, max_lines: int) -> tuple[list[str], Position, bool]:
        """Up to ``max_lines`` lines from ``position``; returns (lines, next position, reached the end)."""
        lines: list[str] = []
        index, offset = position
        while len(lines) < max_lines:
            handle = self._seek((index, offset))
            raw = handle.readline()
            if not raw:
                if index + 1 == len(self.files):
                    return lines, (index, offset), True
                index, offset = index + 1, 0
                continue
            offset = handle.tell()
            text = decode_line(raw)
            if text:
                lines.append(text)
        return lines, (index, offset), False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle, self._handle_index = None, -1


def skip_lines(reader: LineReader, count: int) -> Position:
    """The position just after the first ``count`` non-empty lines (the held-out part)."""
    position: Position = (0, 0)
    while count > 0:
        lines, position, at_end = reader.read(position, min(count, 4096))
        count -= len(lines)
        if at_end:
            break
    return position


# ------------------------------------------------------------------------------------ token streams


class CachedLanguage:
    """A small language: tokenized once, kept as one flat array; the cursor is the whole data position."""

    def __init__(self, source: LanguageSource, encode: Encoder):
        self.source, self.encode = source, encode
        self._tokens: np.ndarray | None = None
        self.cursor = 0
        self.epoch = 0

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            reader = LineReader(self.source.files)
            lines, _, _ = reader.read(skip_lines(reader, self.source.heldout_lines), self.source.train_lines)
            reader.close()
            pieces = [ids for start in range(0, len(lines), ENCODE_BATCH_LINES)
                      for ids in self.encode(lines[start:start + ENCODE_BATCH_LINES])]
            self._tokens = np.fromiter((t for ids in pieces for t in ids), dtype=np.int32)
            if not len(self._tokens):
                raise LangsampError(f"{self.source.files[0]}: the tokenizer produced no tokens for "
                                    f"{self.source.lang_script}; check the tokenizer or drop the language")
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

    def __init__(self, source: LanguageSource, encode: Encoder, block_lines: int = 256):
        self.source, self.encode, self.block_lines = source, encode, block_lines
        self.reader = LineReader(source.files)
        self.start: Position = skip_lines(self.reader, source.heldout_lines)
        self.position: Position = self.start
        self.buffer: list[int] = []
        self.epoch = 0

    def _refill(self) -> None:
        lines, self.position, at_end = self.reader.read(self.position, self.block_lines)
        for ids in self.encode(lines) if lines else []:
            self.buffer.extend(ids)
        if at_end:
            self.position, self.epoch = self.start, self.epoch + 1
            if not lines and not self.buffer:
                raise LangsampError(f"{self.source.files[0]}: no tokens for {self.source.lang_script}")

    def take(self, n: int) -> list[int]:
        while len(self.buffer) < n:
            self._refill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"position": list(self.position), "buffer": list(self.buffer), "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = (int(state["position"][0]), int(state["position"][1]))
        self.buffer, self.epoch = list(state["buffer"]), int(state["epoch"])


# ------------------------------------------------------------------------------------------ sampler


@dataclass
class Example:
    input_ids: list[int]
    lang_script: str
    lang_id: int
    script_id: int


def make_encoder(tokenizer: Any) -> Encoder:
    """Sentences -> token ids without special tokens (the chunk gets one <s> ... </s> pair)."""
    def encode(lines: list[str]) -> list[list[int]]:
        return tokenizer(lines, add_special_tokens=False)["input_ids"]
    return encode


def chunk_markers(tokenizer: Any) -> tuple[int, int]:
    """The ids wrapped around every chunk: <s> ... </s> (XLM-R), [CLS] ... [SEP] for BERT-style vocabularies."""
    if tokenizer.bos_token_id is not None and tokenizer.eos_token_id is not None:
        return tokenizer.bos_token_id, tokenizer.eos_token_id
    return tokenizer.cls_token_id, tokenizer.sep_token_id


class ChunkSampler:
    """An endless, resumable stream of one-language chunks; each rank seeds it with (seed, rank)."""

    def __init__(self, corpus: Corpus, tokenizer: Any, lang2id: dict[str, int], script2id: dict[str, int],
                 max_seq_len: int, alpha: float, seed: int, rank: int = 0, cache_bytes: int = 64 * 2**20):
        self.corpus, self.lang2id, self.script2id = corpus, lang2id, script2id
        self.languages = corpus.languages
        self.probs = sampling_probabilities([corpus.sources[k].train_lines for k in self.languages], alpha)
        self.body_len = max_seq_len - 2
        self.bos, self.eos = chunk_markers(tokenizer)
        self.encode = make_encoder(tokenizer)
        self.cache_bytes = cache_bytes
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rank])))
        self.streams: dict[str, CachedLanguage | StreamingLanguage] = {}
        self.counts: Counter[str] = Counter()

    def stream(self, lang_script: str) -> CachedLanguage | StreamingLanguage:
        if lang_script not in self.streams:
            source = self.corpus.sources[lang_script]
            cached = source.num_bytes <= self.cache_bytes
            self.streams[lang_script] = (CachedLanguage if cached else StreamingLanguage)(source, self.encode)
        return self.streams[lang_script]

    def next_example(self) -> Example:
        lang_script = self.languages[self.rng.choice(len(self.languages), p=self.probs)]
        self.counts[lang_script] += 1
        body = self.stream(lang_script).take(self.body_len)
        lang, script = lang_script.split("_", 1)
        return Example([self.bos, *body, self.eos], lang_script, self.lang2id[lang], self.script2id[script])

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
                     max_seq_len: int, max_chunks: int) -> dict[str, list[Example]]:
    """Per language, up to ``max_chunks`` chunks cut from its held-out first lines (never trained on)."""
    encode, (bos, eos) = make_encoder(tokenizer), chunk_markers(tokenizer)
    body = max_seq_len - 2
    out: dict[str, list[Example]] = {}
    for lang_script, source in corpus.sources.items():
        if not source.heldout_lines:
            continue
        reader = LineReader(source.files)
        lines, _, _ = reader.read((0, 0), source.heldout_lines)
        reader.close()
        tokens = [t for ids in encode(lines) for t in ids]
        lang, script = lang_script.split("_", 1)
        out[lang_script] = [Example([bos, *tokens[i:i + body], eos], lang_script, lang2id[lang], script2id[script])
                            for i in range(0, len(tokens), body)][:max_chunks]
    return out
