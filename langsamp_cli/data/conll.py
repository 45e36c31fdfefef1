"""Token-tagged sentences (NER) in the common column formats, tag mapping and BIO repair.

Formats, told apart by extension and line shape; a blank line ends a sentence:

- XTREME / Glot500 WikiANN: ``token<TAB>tag``; tokens may carry a language prefix (``en:London``),
  removed when every token of the file starts with the same ``xx:`` prefix.
- MasakhaNER: ``token tag`` (space separated).
- Universal NER ``.iob2``: CoNLL-U-like, ``# `` comments, ``idx<TAB>token<TAB>tag<TAB>...``.

NER tags are normalised the way seqeval reads them: entity types outside ``entity_types`` (e.g.
DATE, OTH, and UNER's stray ``B-O``) become ``O``; IOBES becomes IOB2; an ``I-X`` that does not
continue an ``X`` entity becomes ``B-X``. Every change is counted in ``notes``.

Dataset discovery for both tagging tasks (:func:`discover_tagging`) also lives here: UD/UNER
style file names (``en_ewt-ud-test.iob2``) or one folder per language (``<lang>/{train,dev,test}``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.errors import LangsampError

DEFAULT_ENTITY_TYPES = ("PER", "ORG", "LOC")
SPLITS = ("train", "dev", "test")
_PREFIX_RE = re.compile(r"^([a-z]{2,3}(?:[-_][A-Za-z]+)?):")
_UD_NAME_RE = re.compile(r"^(?P<code>[a-z]{2,3})(?:_[a-z0-9]+)?-ud-(?P<split>train|dev|test)\.(?P<ext>iob2|conllu)$")
_FOLDER_FILE_RE = re.compile(r"^(?P<split>train|dev|test)(?:\.(?:txt|tsv|conll|conllu|iob2?|bio))?$")


@dataclass
class TaggedSentences:
    """Sentences as token lists with one tag per token; ``lines`` holds each sentence's first line and
    ``tag_lines`` the file line of every token, so an error names the line it is on. ``sentence_sources``
    (empty for one file) names each sentence's file when several files were read as one."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str
    lines: list[int] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    tag_lines: list[list[int]] = field(default_factory=list)
    sentence_sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def n_tokens(self) -> int:
        return sum(len(t) for t in self.tokens)

    def head(self, n: int | None) -> TaggedSentences:
        """The first ``n`` sentences (all when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        notes = {**self.notes, "truncated_to": n, "sentences_before_truncation": len(self)}
        return TaggedSentences(self.tokens[:n], self.tags[:n], self.source, self.lines[:n], notes,
                               self.tag_lines[:n], self.sentence_sources[:n])

    def where(self, index: int, token: int | None = None) -> str:
        """``file:line`` of sentence ``index`` (its first line), or of its ``token``-th token when given."""
        source = self.sentence_sources[index] if index < len(self.sentence_sources) else self.source
        if token is not None and index < len(self.tag_lines) and token < len(self.tag_lines[index]):
            return f"{source}:{self.tag_lines[index][token]}"
        line = self.lines[index] if index < len(self.lines) else "?"
        return f"{source}:{line}"


def concat_tagged(parts: list[TaggedSentences]) -> TaggedSentences:
    """Several files' sentences one after the other; numeric notes are summed, ``files`` lists them."""
    if len(parts) == 1:
        return parts[0]
    joined = TaggedSentences([], [], " + ".join(part.source for part in parts))
    for part in parts:
        joined.tokens += part.tokens
        joined.tags += part.tags
        joined.lines += part.lines
        joined.tag_lines += part.tag_lines
        joined.sentence_sources += part.sentence_sources or [part.source] * len(part)
        for key, value in part.notes.items():
            summed = isinstance(value, int) and not isinstance(value, bool)
            joined.notes[key] = joined.notes.get(key, 0) + value if summed else value
    joined.notes["files"] = [part.source for part in parts]
    return joined


# ---------------------------------------------------------------------------- reading
def read_tagged_file(path: str | Path) -> TaggedSentences:
    """Read a NER file in any of the formats above (tags as written; see :func:`normalize_ner`)."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: file not found")
    if path.suffix.lower() == ".iob2":
        sentences = read_blocks(path, _iob2_row)
    else:
        sentences = _strip_language_prefix(read_blocks(path, _two_column_row))
    if not sentences.tokens:
        raise LangsampError(f"{path}: no sentences; expected 'token<TAB>tag' lines with a blank line between sentences")
    return sentences


def read_blocks(path: Path, parse_row: Callable[[Path, int, str], tuple[str, str] | None]) -> TaggedSentences:
    """Blank-line separated sentences (NER files and CoNLL-U alike), each token with its file line.

    ``parse_row(path, lineno, line)`` returns (token, tag), or None for a line to ignore (comments,
    CoNLL-U ranges); a sentence's first line counts comments, so an error can point at the block.
    """
    result = TaggedSentences([], [], str(path))
    tokens: list[str] = []
    tags: list[str] = []
    tag_lines: list[int] = []
    start = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    _flush(result, tokens, tags, start, tag_lines)
                    tokens, tags, tag_lines, start = [], [], [], 0
                    continue
                start = start or lineno  # a sentence's first line, comments included
                row = parse_row(path, lineno, line)
                if row is None:
                    continue
                tokens.append(row[0])
                tags.append(row[1])
                tag_lines.append(lineno)
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from None
    _flush(result, tokens, tags, start, tag_lines)
    return result


def _flush(result: TaggedSentences, tokens: list[str], tags: list[str], start: int,
           tag_lines: list[int] | None = None) -> None:
    if tokens:
        result.tokens.append(tokens)
        result.tags.append(tags)
        result.lines.append(start)
        result.tag_lines.append(list(tag_lines or []))


def _two_column_row(path: Path, lineno: int, line: str) -> tuple[str, str]:
    fields = line.split("\t") if "\t" in line else line.split()
    if len(fields) != 2 or not fields[0] or not fields[1].strip():
        raise LangsampError(
            f"{path}:{lineno}: expected 'token<TAB>tag' or 'token tag', got {line[:60]!r}; fix the line"
        )
    return fields[0], fields[1].strip()


def _iob2_row(path: Path, lineno: int, line: str) -> tuple[str, str] | None:
    if line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) < 3:
        raise LangsampError(f"{path}:{lineno}: expected 'idx<TAB>token<TAB>tag...' (.iob2), got {line[:60]!r}")
    if not fields[0].isdigit():  # multi-word ranges (1-2) and empty nodes (1.1) carry no tag of their own
        return None
    return fields[1], fields[2].strip()


def _strip_language_prefix(sentences: TaggedSentences) -> TaggedSentences:
    """Drop an XTREME-style ``xx:`` prefix when every token of the file carries the same one."""
    first = _PREFIX_RE.match(sentences.tokens[0][0]) if sentences.tokens else None
    if not first:
        return sentences
    prefix = first.group(0)
    if not all(tok.startswith(prefix) and len(tok) > len(prefix) for sent in sentences.tokens for tok in sent):
        return sentences
    sentences.tokens = [[tok[len(prefix):] for tok in sent] for sent in sentences.tokens]
    sentences.notes["stripped_token_prefix"] = prefix
    return sentences


# ---------------------------------------------------------------------------- tag normalisation
def normalize_ner(sentences: TaggedSentences, entity_types: tuple[str, ...] | list[str] = DEFAULT_ENTITY_TYPES,
                  ) -> TaggedSentences:
    """Map other entity types to O and repair BIO in place; counts go to ``notes``."""
    keep = set(entity_types)
    mapped: Counter[str] = Counter()
    repaired = 0
    for index, tags in enumerate(sentences.tags):
        plain = [_map_tag(tag, keep, mapped, sentences.where(index, position)) for position, tag in enumerate(tags)]
        fixed = repair_bio(plain)
        repaired += sum(a != b for a, b in zip(plain, fixed))
        sentences.tags[index] = fixed
    if mapped:
        sentences.notes["tags_mapped_to_O"] = dict(sorted(mapped.items()))
    if repaired:
        sentences.notes["bio_repaired"] = repaired
    return sentences


def _map_tag(tag: str, keep: set[str], mapped: Counter[str], where: str) -> str:
    if tag == "O":
        return tag
    prefix, dash, entity = tag.partition("-")
    if not dash or prefix not in ("B", "I", "E", "S") or not entity:
        raise LangsampError(f"{where}: tag {tag!r} is neither O nor B-/I-/E-/S-TYPE; fix the file")
    if entity not in keep:
        mapped[entity] += 1
        return "O"
    return {"E": "I", "S": "B"}.get(prefix, prefix) + "-" + entity


def repair_bio(tags: list[str]) -> list[str]:
    """IOB2 as seqeval expects: an I-X not following B-X/I-X starts a new entity (B-X)."""
    fixed: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        fixed.append(tag)
        previous = tag
    return fixed


# ---------------------------------------------------------------------------- discovery
@dataclass
class TaggingFiles:
    """Split files per language found under a data dir, and files that could not be used."""

    files: dict[str, dict[str, Path]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    more: dict[str, dict[str, list[Path]]] = field(default_factory=dict)  # combine=True: further treebanks

    def split_files(self, lang: str, split: str) -> list[Path]:
        """Every file of one language's split: the first treebank's, then those in ``more``."""
        return [self.files[lang][split], *self.more.get(lang, {}).get(split, [])]


def discover_tagging(data_dir: str | Path, extensions: tuple[str, ...], combine: bool = False) -> TaggingFiles:
    """Split files in ``data_dir`` (depth 1 or 2; deeper folders such as prerelease copies are ignored).

    One treebank (or folder) per language; with ``combine`` a language's further UD treebanks are
    kept in ``more`` (file-name order) instead of being listed as not used.

    UD/UNER names (``en_ewt-ud-test.iob2``): the language is the ISO code before ``_``; files named
    ``train``/``dev``/``test`` (``.txt``...): the language is the parent folder's name. The script is
    detected from the file's first tokens, as the official conversion does.
    """
    data_dir = Path(data_dir)
    found = TaggingFiles()
    treebanks: dict[str, tuple[Path, str]] = {}  # one treebank (or folder) per language
    candidates = sorted(p for p in [*data_dir.glob("*"), *data_dir.glob("*/*")] if p.is_file())
    for path in candidates:
        code, split = _code_and_split(path, extensions)
        if code is None:
            continue
        try:
            lang = _file_language(code, path)
        except LangsampError as err:
            found.problems[path.name] = f"{path}: cannot tell its language ({err})"
            continue
        treebank = (path.parent, path.name.split("-ud-")[0] if "-ud-" in path.name else "")
        chosen = treebanks.setdefault(lang, treebank)
        splits = found.files.setdefault(lang, {})
        if combine and chosen != treebank and treebank[1] and chosen[1]:  # another UD treebank
            found.more.setdefault(lang, {}).setdefault(split, []).append(path)
        elif chosen != treebank or split in splits:
            first = next(iter(splits.values()), path)
            found.problems[str(path.relative_to(data_dir))] = f"{path}: {lang} already comes from {first}; not used"
        else:
            splits[split] = path
    if combine:
        _order_by_file_name(found)
    return found


def _order_by_file_name(found: TaggingFiles) -> None:
    """Each split's treebanks in file-name order (as the official conversion lists them), first in ``files``."""
    for lang, more in found.more.items():
        for split, extra in more.items():
            every = sorted([*([found.files[lang][split]] if split in found.files[lang] else []), *extra],
                           key=lambda path: path.name)
            found.files[lang][split], more[split] = every[0], every[1:]


def _code_and_split(path: Path, extensions: tuple[str, ...]) -> tuple[str | None, str | None]:
    ud = _UD_NAME_RE.match(path.name)
    if ud:
        return (ud["code"], ud["split"]) if ud["ext"] in extensions else (None, None)
    folder = _FOLDER_FILE_RE.match(path.name)
    if folder:
        return path.parent.name, folder["split"]
    return None, None


def _file_language(code: str, path: Path) -> str:
    from langsamp_cli.languages import id_with_detected_script, parse_language, written_id

    named = written_id(code)
    if named:
        return named
    if parse_language(code) == "jpn":  # kanji + kana: the official conversion names it Jpan, not the majority script
        return "jpn_Jpan"
    return id_with_detected_script(code, _token_sample(path))


def _token_sample(path: Path, max_bytes: int = 65_536) -> str:
    """Tokens from the head of a column file: column 2 of CoNLL-U/.iob2 rows, column 1 otherwise."""
    with path.open("rb") as handle:
        head = handle.read(max_bytes).decode("utf-8", errors="ignore")
    tokens = []
    for line in head.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        tokens.append(fields[1] if len(fields) >= 3 else fields[0])
    return " ".join(tokens)
