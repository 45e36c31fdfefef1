"""The evaluation side in memory: hashes of every test item's normalised text and of its character n-grams.

Hashes are polynomial (mod 2**64, an odd base) over the code points of the normalised text, computed for a
whole block at once from prefix sums, so the hash of any span (a line, a window) is two lookups and a
multiplication (:func:`span_hashes`). A hash hit is only a candidate: every hit is confirmed by comparing the
texts themselves, so a collision can never report or remove a line.

Overlap of ``n`` characters is found with probes: the index holds every window of ``probe = n - stride + 1``
characters of the test items (of at least ``n`` characters), and the corpus is probed every ``stride`` (n // 5)
characters only. Any span of ``n`` characters a corpus line shares with an item contains one such probe, so no
shared span is missed, and each candidate is extended on the texts (:func:`shared_span`) and counts only when
the shared span has ``n`` characters or more: the result is exactly "shares ``n`` characters", at a fifth of the
lookups. A bit filter on the hashes' top bits answers most probes without a search.

Memory is 16 bytes per window of the test items of ONE corpus language (a hash and an item number), the bit
filter (about 4 bytes per window) and their normalised texts; it does not depend on the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from langsamp_cli.contamination.normalise import NEWLINE, block_text, normalise_block

_BASE = 0x9E3779B97F4A7C15                 # odd, so it has an inverse mod 2**64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
DENSE_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Jpan", "Kore", "Hang"})
DENSE_FACTOR = 0.4   # a Han character or Hangul syllable carries about as much as 2.5 Latin letters


def ngram_length(script: str, ngram: int) -> int:
    """Characters per n-gram for a script: ``ngram``, or 40% of it for Han/Japanese/Korean text."""
    return max(1, round(ngram * DENSE_FACTOR)) if script in DENSE_SCRIPTS else ngram


@lru_cache(maxsize=4)
def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """base**k and base**-k mod 2**64 for k < length (numpy integer arithmetic wraps around, as wanted)."""
    with np.errstate(over="ignore"):
        up = np.cumprod(np.full(length, _BASE, np.uint64), dtype=np.uint64)
        down = np.cumprod(np.full(length, _BASE_INVERSE, np.uint64), dtype=np.uint64)
    up = np.concatenate([[np.uint64(1)], up[:-1]])
    down = np.concatenate([[np.uint64(1)], down[:-1]])
    return up, down


def powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << max(16, int(length - 1).bit_length())  # a few sizes, cached
    up, down = _powers(size)
    return up[:length], down[:length]


def prefix_sums(cps: np.ndarray) -> np.ndarray:
    """S[j] = sum_{k<j} cps[k] * base**-k; the hash of cps[i:j] is (S[j] - S[i]) * base**(j-1)."""
    _, down = powers(len(cps) + 1)
    sums = np.zeros(len(cps) + 1, np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(cps.astype(np.uint64) * down[:len(cps)], out=sums[1:])
    return sums


def span_hashes(sums: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hashes of the spans [start, end) (non-empty), independent of where the span sits."""
    up, _ = powers(len(sums))
    with np.errstate(over="ignore"):
        return (sums[ends] - sums[starts]) * up[ends - 1]


def window_hashes(sums: np.ndarray, n: int, stride: int = 1) -> np.ndarray:
    """Hashes of the windows of ``n`` code points starting every ``stride`` (window k = [k*stride, k*stride + n))."""
    count = len(sums) - n
    if count <= 0:
        return np.zeros(0, np.uint64)
    up, _ = powers(len(sums))
    with np.errstate(over="ignore"):
        return (sums[n::stride] - sums[:count:stride]) * up[n - 1:n - 1 + count:stride]


@dataclass
class Lines:
    """The lines of a normalised block: [starts[i], ends[i]) is line i (the NEWLINE at ends[i])."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, cps: np.ndarray) -> Lines:
        ends = np.flatnonzero(cps == NEWLINE)
        return cls(np.concatenate([[0], ends[:-1] + 1]).astype(np.int64), ends.astype(np.int64))


@dataclass
class TestItem:
    task: str
    lang_script: str     # the test set's language
    item_id: str         # verse id, index_id, or file:line
    text: str            # as in the test set


@dataclass
class LanguageIndex:
    """Every test item served to one corpus language, hashed whole and by n-grams of ``n`` characters."""

    items: list[TestItem]
    normalised: list[str]
    n: int
    line_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    line_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gram_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    gram_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gram_filter: BitFilter | None = None

    @classmethod
    def build(cls, items: list[TestItem], n: int) -> LanguageIndex:
        text = "\n".join(item.text.replace("\n", " ") for item in items) + "\n"
        cps = normalise_block(text)
        lines = Lines.of(cps)
        normalised = [block_text(cps[s:e]) for s, e in zip(lines.starts, lines.ends)]
        index = cls(items, normalised, n)
        sums = prefix_sums(cps)
        filled = np.flatnonzero(lines.ends > lines.starts)
        index.line_keys, index.line_items = _sorted(span_hashes(sums, lines.starts[filled], lines.ends[filled]),
                                                    filled)
        positions = _windows_inside_lines(lines, index.probe, minimum=n)
        owners = np.searchsorted(lines.ends, positions)
        index.gram_keys, index.gram_items = _sorted(window_hashes(sums, index.probe)[positions], owners)
        index.gram_filter = BitFilter.of(index.gram_keys)
        return index

    @property
    def stride(self) -> int:
        """Corpus windows are probed every ``stride`` characters ..."""
        return max(1, self.n // 5)

    @property
    def probe(self) -> int:
        """... with ``probe`` characters each: every span of ``n`` holds one aligned probe (n = probe + stride - 1),
        so every shared span of ``n`` characters is found with a ``stride``-th of the lookups; each candidate is
        then extended on the texts and counts only if the shared span really has ``n`` characters."""
        return self.n - self.stride + 1

    def long_enough(self, item: int) -> bool:
        return len(self.normalised[item]) >= self.n

    @property
    def nbytes(self) -> int:
        arrays = (self.line_keys, self.line_items, self.gram_keys, self.gram_items)
        filter_bytes = self.gram_filter.bits.nbytes if self.gram_filter is not None else 0
        return sum(a.nbytes for a in arrays) + filter_bytes + sum(len(t) * 4 for t in self.normalised)


@dataclass
class BitFilter:
    """One bit per slot, addressed by a hash's top bits: a quick 'certainly absent' for most corpus windows
    (about 32 slots per key: some 3% of absent hashes pass on to the exact search)."""

    bits: np.ndarray   # uint8, little-endian bit order
    shift: int

    @classmethod
    def of(cls, keys: np.ndarray) -> BitFilter:
        width = min(32, max(16, int(len(keys) * 32).bit_length()))
        slots = _top_bits(keys) >> np.uint32(32 - width)
        bits = np.zeros(1 << (width - 3), np.uint8)
        np.bitwise_or.at(bits, slots >> np.uint32(3), np.left_shift(1, slots & np.uint32(7)).astype(np.uint8))
        return cls(bits, 32 - width)

    def maybe(self, hashes: np.ndarray) -> np.ndarray:
        """Positions of the hashes that may be keys."""
        slots = _top_bits(hashes) >> np.uint32(self.shift)
        found = self.bits[slots >> np.uint32(3)] >> (slots & np.uint32(7)).astype(np.uint8)
        return np.flatnonzero(found & 1)


def _top_bits(hashes: np.ndarray) -> np.ndarray:
    """The upper 32 bits of each uint64 (half the memory traffic of shifting the uint64s)."""
    return (hashes >> np.uint64(32)).astype(np.uint32)


def _windows_inside_lines(lines: Lines, n: int, minimum: int = 0) -> np.ndarray:
    """Start positions of the windows of ``n`` that lie inside one line (of at least ``minimum`` characters)."""
    lengths = lines.ends - lines.starts - n + 1
    keep = (lengths > 0) & (lines.ends - lines.starts >= minimum)
    if not keep.any():
        return np.zeros(0, np.int64)
    starts, lengths = lines.starts[keep], lengths[keep]
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _sorted(keys: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], np.asarray(items, np.int64)[order]


@dataclass
class BlockMatches:
    """What one corpus block matched: (line in block, item) pairs, by whole line and by overlap."""

    whole: list[tuple[int, int]] = field(default_factory=list)
    overlap: list[tuple[int, int]] = field(default_factory=list)

    @property
    def lines(self) -> set[int]:
        return {line for line, _ in self.whole} | {line for line, _ in self.overlap}


def match_block(index: LanguageIndex, cps: np.ndarray) -> BlockMatches:
    """Lines of the normalised block ``cps`` (every line ends with NEWLINE) that hold a test item."""
    found = BlockMatches()
    lines = Lines.of(cps)
    sums = prefix_sums(cps)
    filled = np.flatnonzero(lines.ends > lines.starts)
    if len(index.line_keys) and len(filled):
        hashes = span_hashes(sums, lines.starts[filled], lines.ends[filled])
        for line, lo, hi in _hits(index.line_keys, hashes, filled):
            text = block_text(cps[lines.starts[line]:lines.ends[line]])
            found.whole += [(line, item) for item in {int(i) for i in index.line_items[lo:hi]}
                            if index.normalised[item] == text]
    if len(index.gram_keys):
        found.overlap = _overlaps(index, cps, lines, sums)
    return found


def _overlaps(index: LanguageIndex, cps: np.ndarray, lines: Lines, sums: np.ndarray) -> list[tuple[int, int]]:
    """(line, item) pairs sharing a span of ``index.n`` characters (each confirmed on the texts)."""
    keys, probe, stride = index.gram_keys, index.probe, index.stride
    probes = window_hashes(sums, probe, stride)
    maybe = index.gram_filter.maybe(probes) if index.gram_filter is not None else np.arange(len(probes))
    lo = np.searchsorted(keys, probes[maybe])
    hit = keys[np.minimum(lo, len(keys) - 1)] == probes[maybe]
    present, lo, found = maybe[hit] * stride, lo[hit], probes[maybe[hit]]
    if not len(present):
        return []
    line_of = np.searchsorted(lines.ends, present)
    inside = present + probe <= lines.ends[line_of]  # a probe may not run over the end of its line
    present, line_of, lo, found = present[inside], line_of[inside], lo[inside], found[inside]
    hi = np.searchsorted(keys, found, side="right")
    confirmed: set[tuple[int, int]] = set()
    texts: dict[int, str] = {}
    for position, line, start, stop in zip(present.tolist(), line_of.tolist(), lo.tolist(), hi.tolist()):
        for item in index.gram_items[start:stop].tolist():
            if (line, item) in confirmed:
                continue
            if line not in texts:
                texts[line] = block_text(cps[lines.starts[line]:lines.ends[line]])
            offset = position - int(lines.starts[line])
            if shared_span(texts[line], offset, probe, index.normalised[item]) >= index.n:
                confirmed.add((line, item))
    return sorted(confirmed)


def shared_span(line: str, offset: int, length: int, item: str) -> int:
    """The longest span ``line`` and ``item`` share around ``line[offset:offset + length]`` (0 if item lacks it)."""
    window = line[offset:offset + length]
    best, at = 0, item.find(window)
    while at >= 0:
        left = _common_length(line[:offset][::-1], item[:at][::-1])
        right = _common_length(line[offset + length:], item[at + length:])
        best = max(best, left + length + right)
        at = item.find(window, at + 1)
    return best


def _common_length(a: str, b: str) -> int:
    """Length of the common prefix of ``a`` and ``b``."""
    size = 0
    for x, y in zip(a, b):
        if x != y:
            break
        size += 1
    return size


def _hits(keys: np.ndarray, hashes: np.ndarray, labels: np.ndarray | None):
    """(label or position, lo, hi) for every hash found in the sorted ``keys`` (keys[lo:hi] equal it)."""
    if not len(hashes):
        return
    lo = np.searchsorted(keys, hashes)
    present = np.flatnonzero(keys[np.minimum(lo, len(keys) - 1)] == hashes)
    if not len(present):
        return
    hi = np.searchsorted(keys, hashes[present], side="right")
    for where, start, stop in zip(present, lo[present], hi):
        yield (int(labels[where]) if labels is not None else int(where)), int(start), int(stop)
