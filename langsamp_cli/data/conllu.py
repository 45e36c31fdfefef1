"""CoNLL-U treebanks as (word, UPOS) sentences for POS tagging.

Only syntactic words are kept: multi-word token ranges (``1-2``, e.g. Spanish ``del`` = ``de el``)
carry no UPOS of their own and are skipped, and so are empty nodes (``1.1``, enhanced
dependencies), which are not part of the basic tree. This matches the UD word counts in each
treebank's ``stats.xml`` and the official XTREME/Glot500 conversion. Every word line must have
10 tab-separated fields; anything else is an error naming ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

from langsamp_cli.data.conll import TaggedSentences, TaggingFiles, discover_tagging, read_blocks
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
    skipped = {"multiword_ranges": 0, "empty_nodes": 0}

    def parse_row(path: Path, lineno: int, line: str) -> tuple[str, str] | None:
        return None if line.startswith("#") else _word_row(path, lineno, line, skipped)

    result = read_blocks(path, parse_row)
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
