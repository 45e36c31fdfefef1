"""The text form test items and corpus lines are compared in: NFKC, case-folded, letters and marks only.

``normalise(text)`` = the letters (L*) and combining marks (M*) of ``casefold(NFKC(text))``: punctuation,
symbols, digits and every kind of white space are dropped, not replaced. Dropping the spaces too (rather than
collapsing them) makes re-spaced copies match, tokenised test files (``Hello , world .``) match running text,
and scripts written without spaces (Chinese, Japanese, Thai) need no word segmentation.

Speed: a corpus is normalised block by block (megabytes at a time) as one numpy array of code points.
:func:`normalise_block` maps each code point through a table built once from ``unicodedata`` (the per-character
result of NFKC + casefold + the letter/mark filter) and only calls ``unicodedata.normalize`` on a block holding
a character whose normalisation depends on its neighbours (a combining character that composes with the one
before it, marks out of canonical order) or expands to several letters (``ß`` -> ``ss``). Both paths give the
same result (tests/test_contamination.py checks them against each other on real text).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import NamedTuple

import numpy as np

NEWLINE = 10          # kept in normalised blocks as the line separator
_CODE_POINTS = 0x110000


class _Tables(NamedTuple):
    keep: np.ndarray      # uint32: cp for letters/marks, NEWLINE for '\n', 0 (dropped) otherwise
    simple: np.ndarray    # uint32: the one letter/mark a code point normalises to on its own, 0 if none
    context: np.ndarray   # bool: needs unicodedata.normalize on its block (expands, or composes with neighbours)
    first_ccc: np.ndarray  # uint8: canonical combining class of the first/last character of its decomposition
    last_ccc: np.ndarray
    flags: np.ndarray      # uint8: 1 = context, 2 = starts with a combining mark (may need reordering)


def _kept(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def _letters(text: str) -> str:
    return "".join(char for char in text if _kept(char))


@lru_cache(maxsize=1)
def tables() -> _Tables:
    """Per-code-point tables (about 0.5 s to build, 9 MB; once per process)."""
    keep = np.zeros(_CODE_POINTS, np.uint32)
    simple = np.zeros(_CODE_POINTS, np.uint32)
    context = np.zeros(_CODE_POINTS, bool)
    first_ccc = np.zeros(_CODE_POINTS, np.uint8)
    last_ccc = np.zeros(_CODE_POINTS, np.uint8)
    for cp in range(_CODE_POINTS):
        char = chr(cp)
        if unicodedata.category(char) in ("Cn", "Co", "Cs"):
            continue
        keep[cp] = cp if _kept(char) else 0
        mapped = (char.lower() if char.isalpha() else "") if cp < 128 else _letters(
            unicodedata.normalize("NFKC", char).casefold())
        if len(mapped) == 1:
            simple[cp] = ord(mapped)
        context[cp] |= len(mapped) > 1
        if cp >= 128:
            decomposed = unicodedata.normalize("NFKD", char)
            first_ccc[cp] = unicodedata.combining(decomposed[0])
            last_ccc[cp] = unicodedata.combining(decomposed[-1])
            _mark_composing(char, context)
    context[0x1161:0x1176] = True   # Hangul vowel and trailing jamo compose with the syllable before them
    context[0x11A8:0x11C3] = True
    keep[NEWLINE] = simple[NEWLINE] = NEWLINE
    flags = context.astype(np.uint8) | ((first_ccc > 0).astype(np.uint8) << 1)
    return _Tables(keep, simple, context, first_ccc, last_ccc, flags)


def _mark_composing(char: str, context: np.ndarray) -> None:
    """The second character of a canonical pair that NFC composes back into ``char`` depends on its neighbour."""
    decomposition = unicodedata.decomposition(char)
    if not decomposition or decomposition.startswith("<"):
        return
    parts = decomposition.split()
    if len(parts) == 2:
        pair = "".join(chr(int(p, 16)) for p in parts)
        if unicodedata.normalize("NFC", pair) == char:
            context[int(parts[1], 16)] = True


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def normalise_block(text: str) -> np.ndarray:
    """``text`` (lines separated by '\\n') normalised: uint32 code points, NEWLINE between lines."""
    t = tables()
    cps = code_points(text)
    mapped = t.simple[cps]
    slow = _context_positions(cps, t)
    if len(slow):
        mapped = _renormalise_lines(cps, mapped, slow, t)
    return mapped[mapped != 0]


def _context_positions(cps: np.ndarray, t: _Tables) -> np.ndarray:
    """Positions whose normalisation depends on their neighbours (or expands): their lines need unicodedata."""
    if not len(cps) or int(cps.max()) < 128:
        return np.zeros(0, np.int64)
    flags = t.flags[cps]
    marks = np.flatnonzero(flags & 2)
    marks = marks[marks > 0]
    later, earlier = t.first_ccc[cps[marks]], t.last_ccc[cps[marks - 1]]
    reordered = marks[earlier > later]  # marks out of canonical order
    return np.union1d(np.flatnonzero(flags & 1), reordered)


def _renormalise_lines(cps: np.ndarray, mapped: np.ndarray, positions: np.ndarray, t: _Tables) -> np.ndarray:
    """``mapped`` with every line holding one of ``positions`` replaced by its unicodedata normalisation."""
    newlines = np.flatnonzero(cps == NEWLINE)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(cps)]])
    pieces, done = [], 0
    for line in np.unique(np.searchsorted(newlines, positions)):
        start, end = int(starts[line]), int(ends[line])
        text = cps[start:end].tobytes().decode("utf-32-le", "surrogatepass")
        pieces += [mapped[done:start], t.keep[code_points(unicodedata.normalize("NFKC", text).casefold())]]
        done = end
    pieces.append(mapped[done:])
    return np.concatenate(pieces)


def normalise(text: str) -> str:
    """One text's normalised form (what is compared); '' when it has no letter."""
    cps = normalise_block(text.replace("\n", " "))
    return cps.tobytes().decode("utf-32-le")


def block_text(cps: np.ndarray) -> str:
    return cps.tobytes().decode("utf-32-le")
