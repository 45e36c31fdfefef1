"""CoNLL-U treebanks as (word, UPOS) sentences for POS tagging.

Only syntactic words are kept: multi-word token ranges (``1-2``, e.g. Spanish ``del`` = ``de el``)
carry no UPOS of their own and are skipped, and so are empty nodes (``1.1``, enhanced
dependencies), which are not part of the basic tree. This matches the UD word counts in each
treebank's ``stats.xml`` and the official XTREME/Glot500 conversion. Every word line must have
10 tab-separated fields; anything else is an error naming ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

from langsamp_cli.data.conll import TaggedSentences, TaggingFiles, discover_tagging
from langsamp_cli.errors import LangsampError

UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
    "SCONJ", "SYM", "VERB", "X",
)
_N_FIELDS = 10


def read_conllu(path: str | Path) -> TaggedSentences:
    """Words and UPOS tags of every sentence; ``notes`` counts skipped ranges and empty nodes."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"{path}: CoNLL-U file not found")
    result = TaggedSentences([], [], str(path))
    skipped = {"multiword_ranges": 0, "empty_nodes": 0}
    words: list[str] = []
    tags: list[str] = []
    tag_lines: list[int] = []
    start = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    _flush(result, words, tags, start, tag_lines)
                    words, tags, tag_lines, start = [], [], [], 0
                    continue
                start = start or lineno  # a sentence's first line, comments included
                if line.startswith("#"):
                    continue
                row = _word_row(path, lineno, line, skipped)
                if row is None:
                    continue
                words.append(row[0])
                tags.append(row[1])
                tag_lines.append(lineno)
    except UnicodeDecodeError as err:
        raise LangsampError(f"{path}: not valid UTF-8 at byte {err.start}; re-encode the file as UTF-8") from None
    _flush(result, words, tags, start, tag_lines)
    if not result.tokens:
        raise LangsampError(f"{path}: no sentences; is this a CoNLL-U file?")
    result.notes.update({k: v for k, v in skipped.items() if v})
    return result


def _word_row(path: Path, lineno: int, line: str, skipped: dict[str, int]) -> tuple[str, str] | None:
    fields = line.split("\t")
    if len(fields) != _N_FIELDS:
        raise LangsampError(
            f"{path}:{lineno}: CoNLL-U word lines have 10 tab-separated fields, got {len(fields)}: {line[:60]!r}"
        )
    word_id = fields[0]
    if "-" in word_id:
        skipped["multiword_ranges"] += 1
        return None
    if "." in word_id:
        skipped["empty_nodes"] += 1
        return None
    if not word_id.isdigit():
        raise LangsampError(f"{path}:{lineno}: word id {word_id!r} is not a number, a range (1-2) or a node (1.1)")
    upos = fields[3].strip()
    if not upos or upos == "_":
        raise LangsampError(f"{path}:{lineno}: word {fields[1]!r} has no UPOS tag (column 4); fix the file")
    return fields[1], upos


def _flush(result: TaggedSentences, words: list[str], tags: list[str], start: int, tag_lines: list[int]) -> None:
    if words:
        result.tokens.append(words)
        result.tags.append(tags)
        result.lines.append(start)
        result.tag_lines.append(list(tag_lines))


def read_pos_file(path: str | Path) -> TaggedSentences:
    """A ``.conllu`` treebank, or an XTREME-style ``word<TAB>UPOS`` file (any other name)."""
    from langsamp_cli.data.conll import read_tagged_file

    return read_conllu(path) if Path(path).suffix.lower() == ".conllu" else read_tagged_file(path)


def discover_treebanks(data_dir: str | Path) -> TaggingFiles:
    """``*-ud-{train,dev,test}.conllu`` in ``data_dir`` or its treebank folders (or XTREME-style
    ``<lang>/{train,dev,test}`` files), keyed by language id.

    ``en_ewt-ud-test.conllu`` -> ``eng`` + the script detected in its words (``zh_gsd`` -> ``zho_Hani``,
    ``ja_*`` -> ``jpn_Jpan``, as the official Glot500 conversion names them). When a language has
    several treebanks, the first in name order is used and the others are listed in ``problems``.
    """
    return discover_tagging(data_dir, extensions=("conllu",))
