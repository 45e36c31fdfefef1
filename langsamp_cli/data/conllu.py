"""CoNLL-U treebanks as (word, UPOS) sentences for POS tagging, prepared one of two ways.

``glot500`` (default; the preparation behind the paper's POS numbers: Glot500's ``download_data.sh``
runs XTREME's ``conllu_to_conll.py --replace_subtokens_with_fused_forms`` on every treebank, then
``utils_preprocess.py --task udpos``):

- a multi-word token (range ``1-2``, e.g. Spanish ``del`` = ``de el``, Hebrew and English contractions)
  becomes ONE word, its surface form, tagged with the UPOS of the span's head: the word of the span
  with the fewest ancestors in the sentence graph (basic heads plus the enhanced heads of column 9,
  as the conversion builds it); on a tie, the first of the tied words in the conversion's UPOS
  precedence list (its language-specific list for es, fr and it; tags missing from the list rank last);
- a sentence whose words are all, or all but one, ``_`` (a treebank without text) is dropped;
- zero-width non-joiners (U+200C) and spaces inside words are removed (``"10 000"`` -> ``"10000"``);
- all treebanks of a language are read one after the other, in file-name order (see
  :func:`discover_treebanks`).

``syntactic``: every syntactic word (the UD word counts of ``stats.xml``), multi-word ranges skipped,
one treebank per language, words kept as written (spaces included).

Both skip empty nodes (``1.1``, enhanced dependencies), which are not part of the basic tree. Every
word line must have 10 tab-separated fields; anything else is an error naming ``file:line``. What was
changed is counted in ``notes`` (recorded in each result unit).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.data.conll import TaggedSentences, TaggingFiles, discover_tagging
from langsamp_cli.errors import LangsampError

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
    "SCONJ", "SYM", "VERB", "X",
)
# The official head's 18 rows: utils_tag.get_labels puts "O" before the 17 tags of pos_labels.txt.
POS_LABELS = ("O", *UPOS_TAGS)
UD_PREPARATIONS = ("glot500", "syntactic")
_N_FIELDS = 10
_ZWNJ = "\u200c"
# conllu_to_conll.py's POSRANKPRECEDENCEDICT: which word of a tied span becomes the fused word's head.
_DEFAULT_PRECEDENCE = ("VERB", "NOUN", "PROPN", "PRON", "ADJ", "NUM", "ADV", "INTJ", "AUX", "ADP", "DET", "PART",
                       "CCONJ", "SCONJ", "X", "PUNCT")
_PRECEDENCE = {
    "es": ("VERB", "AUX", "PRON", "ADP", "DET"),
    "fr": ("VERB", "AUX", "PRON", "NOUN", "ADJ", "ADV", "ADP", "DET", "PART", "SCONJ", "CONJ"),
    "it": ("VERB", "AUX", "ADV", "PRON", "ADP", "DET", "INTJ"),
}


@dataclass
class _Word:
    id: int
    form: str
    upos: str
    line: int
    heads: set[int] = field(default_factory=set)  # basic head and enhanced heads (graph parents)


@dataclass
class _Sentence:
    start: int                                    # first line of the block, comments included
    words: list[_Word] = field(default_factory=list)
    ranges: list[tuple[int, int, str, int]] = field(default_factory=list)  # (first, last, surface form, line)


def read_conllu(path: str | Path, preparation: str = "glot500") -> TaggedSentences:
    """Words and UPOS tags of every sentence, prepared as ``preparation`` says (see the module doc)."""
    path = Path(path)
    if preparation not in UD_PREPARATIONS:
        raise LangsampError(f"--ud-preparation {preparation}: choose one of {', '.join(UD_PREPARATIONS)}")
    if not path.is_file():
        raise LangsampError(f"{path}: CoNLL-U file not found")
    counts = {"multiword_ranges": 0, "empty_nodes": 0}
    sentences = list(_read_sentences(path, counts))
    if preparation == "syntactic":
        result = _syntactic(sentences, str(path))
        result.notes.update({k: v for k, v in counts.items() if v})
    else:
        precedence = _PRECEDENCE.get(path.name.split("_")[0], _DEFAULT_PRECEDENCE)  # the file's language code
        result = _glot500(sentences, str(path), precedence)
        if counts["empty_nodes"]:
            result.notes["empty_nodes"] = counts["empty_nodes"]
    if not result.tokens:
        raise LangsampError(f"{path}: no sentences; is this a CoNLL-U file?")
    result.notes["ud_preparation"] = preparation
    return result


# ---------------------------------------------------------------------------- parsing
def _read_sentences(path: Path, counts: dict[str, int]) -> Iterator[_Sentence]:
    sentence = _Sentence(0)
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if sentence.words:
                        yield sentence
                    sentence = _Sentence(0)
                    continue
                sentence.start = sentence.start or lineno
                if not line.startswith("#"):
                    _parse_row(path, lineno, line, sentence, counts)
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from None
    if sentence.words:
        yield sentence


def _parse_row(path: Path, lineno: int, line: str, sentence: _Sentence, counts: dict[str, int]) -> None:
    fields = line.split("\t")
    if len(fields) != _N_FIELDS:
        raise LangsampError(
            f"{path}:{lineno}: CoNLL-U word lines have 10 tab-separated fields, got {len(fields)}: {line[:60]!r}"
        )
    word_id = fields[0]
    if "-" in word_id:
        first, _, last = word_id.partition("-")
        if not (first.isdigit() and last.isdigit() and int(first) < int(last)):
            raise LangsampError(f"{path}:{lineno}: multi-word range {word_id!r} is not 'first-last'; fix the file")
        counts["multiword_ranges"] += 1
        sentence.ranges.append((int(first), int(last), fields[1], lineno))
        return
    if "." in word_id:
        counts["empty_nodes"] += 1
        return
    if not word_id.isdigit():
        raise LangsampError(f"{path}:{lineno}: word id {word_id!r} is not a number, a range (1-2) or a node (1.1)")
    upos = fields[3].strip()
    if not upos or upos == "_":
        raise LangsampError(f"{path}:{lineno}: word {fields[1]!r} has no UPOS tag (column 4); fix the file")
    heads = {int(fields[6])} if fields[6].isdigit() else set()
    heads |= {int(pair.split(":")[0]) for pair in fields[8].split("|") if pair.split(":")[0].isdigit()}
    sentence.words.append(_Word(int(word_id), fields[1], upos, lineno, heads))


# ---------------------------------------------------------------------------- the two preparations
def _syntactic(sentences: list[_Sentence], source: str) -> TaggedSentences:
    result = TaggedSentences([], [], source)
    for sentence in sentences:
        _append(result, sentence.start, [(w.form, w.upos, w.line) for w in sentence.words])
    return result


def _glot500(sentences: list[_Sentence], source: str, precedence: tuple[str, ...]) -> TaggedSentences:
    result = TaggedSentences([], [], source)
    fused = without_text = cleaned = 0
    for sentence in sentences:
        words = _fuse(sentence, precedence, source)
        fused += len(sentence.ranges)
        untexted = sum(form == "_" for form, _, _ in words)
        if untexted and untexted >= len(words) - 1:  # utils_preprocess keeps a sentence only below this
            without_text += 1
            continue
        clean = [(form.replace(_ZWNJ, "").replace(" ", ""), upos, line) for form, upos, line in words]
        cleaned += sum(a[0] != b[0] for a, b in zip(words, clean))
        _append(result, sentence.start, clean)
    counts = {"multiword_tokens_fused": fused, "sentences_without_text": without_text,
              "words_without_spaces_or_zwnj": cleaned}
    result.notes.update({k: v for k, v in counts.items() if v})
    return result


def _fuse(sentence: _Sentence, precedence: tuple[str, ...], source: str) -> list[tuple[str, str, int]]:
    """(form, UPOS, line) per word after replacing each multi-word span by its surface form."""
    by_id = {w.id: w for w in sentence.words}
    surface: dict[int, str] = {}
    dropped: set[int] = set()
    for first, last, form, lineno in sentence.ranges:
        span = list(range(first, last + 1))
        missing = [i for i in span if i not in by_id]
        if missing:
            raise LangsampError(f"{source}:{lineno}: multi-word range {first}-{last} names word {missing[0]}, "
                                "which the sentence does not have; fix the file")
        head = _span_head(span, by_id, precedence)
        surface[head] = form
        dropped |= set(span) - {head}
    return [(surface.get(w.id, w.form), w.upos, w.line) for w in sentence.words if w.id not in dropped]


def _span_head(span: list[int], by_id: dict[int, _Word], precedence: tuple[str, ...]) -> int:
    depth = {i: len(_ancestors(i, by_id)) for i in span}
    highest = [i for i in span if depth[i] == min(depth.values())]
    if len(highest) == 1:
        return highest[0]
    rank = {tag: r for r, tag in enumerate(precedence)}
    return min(highest, key=lambda i: (rank.get(by_id[i].upos, len(precedence)), span.index(i)))


def _ancestors(word: int, by_id: dict[int, _Word]) -> set[int]:
    """Every node with a path to ``word`` (the root 0 included), following basic and enhanced heads."""
    seen: set[int] = set()
    todo = list(by_id[word].heads)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in by_id:
            todo.extend(by_id[node].heads)
    seen.discard(word)
    return seen


def _append(result: TaggedSentences, start: int, words: list[tuple[str, str, int]]) -> None:
    if not words:
        return
    result.tokens.append([form for form, _, _ in words])
    result.tags.append([upos for _, upos, _ in words])
    result.lines.append(start)
    result.tag_lines.append([line for _, _, line in words])


# ---------------------------------------------------------------------------- files
def read_pos_file(path: str | Path, preparation: str = "glot500") -> TaggedSentences:
    """A ``.conllu`` treebank, or an XTREME-style ``word<TAB>UPOS`` file (any other name; already prepared)."""
    from langsamp_cli.data.conll import read_tagged_file

    return read_conllu(path, preparation) if Path(path).suffix.lower() == ".conllu" else read_tagged_file(path)


def read_pos_files(paths: list[Path], preparation: str = "glot500") -> TaggedSentences:
    """One split of a language: its treebanks' sentences one after the other (one file: that file)."""
    from langsamp_cli.data.conll import concat_tagged

    return concat_tagged([read_pos_file(path, preparation) for path in paths])


def discover_treebanks(data_dir: str | Path, combine: bool = False) -> TaggingFiles:
    """``*-ud-{train,dev,test}.conllu`` in ``data_dir`` or its treebank folders (or XTREME-style
    ``<lang>/{train,dev,test}`` files), keyed by language id.

    ``en_ewt-ud-test.conllu`` -> ``eng`` + the script detected in its words (``zh_gsd`` -> ``zho_Hani``,
    ``ja_*`` -> ``jpn_Jpan``, as the official Glot500 conversion names them). When a language has
    several treebanks, ``combine`` (the glot500 preparation) uses them all (``more``, in file-name
    order); otherwise the first in name order is used and the others are listed in ``problems``.
    """
    return discover_tagging(data_dir, extensions=("conllu",), combine=combine)
