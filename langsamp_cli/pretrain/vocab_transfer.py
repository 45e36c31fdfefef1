"""Continue a checkpoint with another tokenizer: its token rows moved to the new vocabulary, piece by piece.

The paper continues XLM-R's weights with Glot500-m's tokenizer (XLM-R's 250,002 pieces, then new pieces). Here
the rows are matched **by piece string**, so any tokenizer with the same special tokens works, whatever its id
order: every piece the model's own tokenizer has keeps its trained row (input embedding, output decoder when it
is not tied, LM-head bias); for a strict extension that is the identity on the shared ids. The other rows are
initialised with ``--init-new-tokens``:

- ``random``: what the official launcher got from ``resize_token_embeddings`` under the transformers it requires
  (4.42-4.45): rows drawn from N(0, initializer_range) and LM-head bias 0 (the tied bias is zero-padded).
  transformers >= 4.46 (5.x included) defaults to ``mean_resizing=True`` instead: rows drawn from a normal with
  the old rows' mean and 1e-9 x their covariance, which is the ``mean`` method up to noise of order 1e-5.
- ``mean``: the mean of all the model's old rows (bias: the mean of the old bias).
- ``subword``: the mean of the rows of the pieces the model's own tokenizer splits the new piece's surface
  string into (the "fast vocabulary transfer" idea; the bias likewise); ``<unk>`` pieces are left out, and a
  piece the old tokenizer reads as ``<unk>`` only falls back to ``mean``.

Means are summed in float64 (exact for a few float32 rows) and rounded once, in chunks, so resizing a 250k x 768
table to 401k rows needs little more than the new table (benchmarks/vocab_resize.py).
"""

from __future__ import annotations

import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_text
from langsamp_cli.pretrain.config import InitTokens

INIT_TOKEN_METHODS = typing.get_args(InitTokens)
SPECIAL_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token", "cls_token", "sep_token")
CHUNK_ROWS = 4096        # rows gathered at once: bounds the temporary memory of a copy or a mean
SOURCES_FILE = "vocab_transfer.tsv"


@dataclass
class NewRow:
    """How one row of the new vocabulary was filled."""

    new_id: int
    piece: str
    method: str                       # subword | mean | random
    sources: list[int] = field(default_factory=list)  # old ids averaged (subword)


@dataclass
class VocabTransfer:
    """What moving a model to a new tokenizer did; ``record()`` goes to langsamp.json, run.json and the card."""

    old_size: int
    new_size: int
    kept: int                          # new rows copied from an old row of the same piece
    kept_same_id: int                  # ... of which at the same id
    method: str                        # --init-new-tokens
    new_rows: list[NewRow]
    tokenizer: str = ""

    @property
    def initialised(self) -> dict[str, int]:
        return dict(sorted(Counter(row.method for row in self.new_rows).items()))

    def record(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "old_vocab_size": self.old_size, "new_vocab_size": self.new_size,
                "kept_rows": self.kept, "kept_at_same_id": self.kept_same_id, "init_new_tokens": self.method,
                "initialised_rows": self.initialised, "strict_extension": self.kept_same_id == self.kept}

    def line(self) -> str:
        made = ", ".join(f"{count:,} by {method}" for method, count in self.initialised.items()) or "none"
        moved = self.kept - self.kept_same_id
        how = "all at their old ids: a strict extension" if moved == 0 else \
            f"{self.kept_same_id:,} at their old ids, {moved:,} moved to the piece's new id"
        return (f"vocabulary {self.old_size:,} -> {self.new_size:,} pieces: kept {self.kept:,} trained rows, "
                f"{how}; initialised {len(self.new_rows):,} new rows ({made})")


def check_compatible(old: Any, new: Any, model: str, tokenizer: str, old_vocab: dict[str, int] | None = None,
                     new_vocab: dict[str, int] | None = None) -> None:
    """Same special tokens, and at least one ordinary piece in common; else one line naming the difference."""
    for attribute in SPECIAL_ATTRIBUTES:
        before, after = getattr(old, attribute, None), getattr(new, attribute, None)
        if str(before) != str(after):
            raise LangsampError(f"--tokenizer {tokenizer}: its {attribute} is {after!r}, the model {model}'s is "
                                f"{before!r}; continuing needs the same special tokens (use a tokenizer extended "
                                "from the model's own, e.g. with 'langsamp tokenizer extend')")
    ignored = set(old.all_special_tokens) | {"▁"}   # a lone word-start marker says nothing about the pieces
    old_vocab = old_vocab if old_vocab is not None else old.get_vocab()
    new_vocab = new_vocab if new_vocab is not None else new.get_vocab()
    if not any(piece in old_vocab for piece in new_vocab if piece not in ignored):
        raise LangsampError(f"--tokenizer {tokenizer}: shares no piece with the model {model}'s tokenizer, so no "
                            "trained row could be kept; train from scratch with --from-scratch --tokenizer, or use "
                            "a tokenizer that extends the model's")


def row_mapping(old: Any, new: Any, old_vocab: dict[str, int] | None = None,
                new_vocab: dict[str, int] | None = None) -> np.ndarray:
    """For every new id, the old id of the same piece, or -1."""
    old_vocab = old_vocab if old_vocab is not None else old.get_vocab()
    mapping = np.full(len(new), -1, dtype=np.int64)
    for piece, new_id in (new_vocab if new_vocab is not None else new.get_vocab()).items():
        if new_id < len(mapping) and piece in old_vocab:
            mapping[new_id] = old_vocab[piece]
    return mapping


def subword_sources(old: Any, new: Any, new_ids: list[int], old_vocab: dict[str, int] | None = None
                    ) -> list[list[int]]:
    """The old ids the model's tokenizer splits each new piece's surface string into (``<unk>`` left out).

    A piece that does not start a word (no leading ``▁``) is read without the word-start marker the old
    tokenizer puts first (a lone ``▁`` piece is dropped).
    """
    if not new_ids:
        return []
    pieces = new.convert_ids_to_tokens(new_ids)
    texts = [new.convert_tokens_to_string([piece]) or piece for piece in pieces]
    encoded = _encode(old, texts)
    word_start = (old_vocab if old_vocab is not None else old.get_vocab()).get("▁")
    unk = old.unk_token_id
    sources = []
    for piece, ids in zip(pieces, encoded):
        if ids and word_start is not None and ids[0] == word_start and not piece.startswith("▁") and len(ids) > 1:
            ids = ids[1:]
        sources.append([i for i in ids if i != unk] if unk in ids else ids)
    return sources


def _encode(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Ids without special tokens; the Rust tokenizer's batch call where there is one (twice as fast)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def plan_new_rows(old: Any, new: Any, mapping: np.ndarray, method: str,
                  old_vocab: dict[str, int] | None = None) -> list[NewRow]:
    if method not in INIT_TOKEN_METHODS:
        raise LangsampError(f"--init-new-tokens {method}: choose one of {', '.join(INIT_TOKEN_METHODS)}")
    new_ids = [int(i) for i in np.flatnonzero(mapping < 0)]
    pieces = new.convert_ids_to_tokens(new_ids)
    if method != "subword":
        return [NewRow(i, piece, method) for i, piece in zip(new_ids, pieces)]
    return [NewRow(i, piece, "subword", ids) if ids else NewRow(i, piece, "mean")
            for i, piece, ids in zip(new_ids, pieces, subword_sources(old, new, new_ids, old_vocab))]


def transfer_vocabulary(mlm: nn.Module, old: Any, new: Any, method: str, seed: int, tokenizer: str = "",
                        model: str = "") -> VocabTransfer:
    """Resize ``mlm``'s token rows from ``old``'s vocabulary to ``new``'s, in place (see the module doc)."""
    old_vocab, new_vocab = old.get_vocab(), new.get_vocab()   # each call rebuilds a dict: once each
    check_compatible(old, new, model, tokenizer, old_vocab, new_vocab)
    mapping = row_mapping(old, new, old_vocab, new_vocab)
    rows = plan_new_rows(old, new, mapping, method, old_vocab)
    embeddings = mlm.get_input_embeddings()
    old_size = embeddings.weight.shape[0]
    if len(old) > old_size or int(mapping.max()) >= old_size:
        raise LangsampError(f"--model {model}: its tokenizer has {len(old):,} pieces but the model only "
                            f"{old_size:,} embedding rows; the checkpoint and its tokenizer do not belong together")
    generator = torch.Generator().manual_seed(seed)
    std = float(getattr(mlm.config, "initializer_range", 0.02))
    decoder = mlm.get_output_embeddings()
    tied = decoder is not None and decoder.weight is embeddings.weight
    _replace(mlm, embeddings.weight, nn.Parameter(
        resized_rows(embeddings.weight.detach(), mapping, rows, "random_normal", std, generator),
        requires_grad=embeddings.weight.requires_grad))
    embeddings.num_embeddings = len(new)
    if decoder is not None:
        if not tied:  # a tied decoder already holds the new table: _replace swapped every reference to the old one
            _replace(mlm, decoder.weight, nn.Parameter(
                resized_rows(decoder.weight.detach(), mapping, rows, "random_normal", std, generator)))
        bias = getattr(decoder, "bias", None)
        if bias is not None:
            _replace(mlm, bias, nn.Parameter(resized_rows(bias.detach(), mapping, rows, "zeros", std, generator)))
        if hasattr(decoder, "out_features"):
            decoder.out_features = len(new)
    mlm.config.get_text_config().vocab_size = len(new)
    kept = int((mapping >= 0).sum())
    same = int((mapping == np.arange(len(mapping))).sum())
    return VocabTransfer(old_size, len(new), kept, same, method, rows, tokenizer)


def resized_rows(old: torch.Tensor, mapping: np.ndarray, rows: list[NewRow], random_kind: str, std: float,
                 generator: torch.Generator) -> torch.Tensor:
    """A new (len(mapping), ...) tensor: kept rows copied, new rows by their method (vectors: a bias)."""
    new = torch.empty((len(mapping), *old.shape[1:]), dtype=old.dtype)
    same = _same_id_prefix(mapping)   # a strict extension: one plain copy of the first rows
    new[:same] = old[:same]
    kept_new = np.flatnonzero(mapping >= 0)
    kept_new = kept_new[kept_new >= same]
    for start in range(0, len(kept_new), CHUNK_ROWS):
        part = torch.from_numpy(kept_new[start:start + CHUNK_ROWS])
        new[part] = old[torch.from_numpy(mapping[part.numpy()])]
    by_method: dict[str, list[NewRow]] = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    if "mean" in by_method:
        ids = torch.tensor([row.new_id for row in by_method["mean"]])
        new[ids] = mean_of_rows(old).to(old.dtype).expand(len(ids), *old.shape[1:])
    if "subword" in by_method:
        _fill_subword(new, old, by_method["subword"])
    if "random" in by_method:
        ids = torch.tensor([row.new_id for row in by_method["random"]])
        if random_kind == "zeros":
            new[ids] = 0
        else:
            new[ids] = torch.normal(0.0, std, (len(ids), *old.shape[1:]), generator=generator).to(old.dtype)
    return new


def _same_id_prefix(mapping: np.ndarray) -> int:
    """How many first ids map to themselves."""
    differs = np.flatnonzero(mapping != np.arange(len(mapping)))
    return int(differs[0]) if len(differs) else len(mapping)


def mean_of_rows(table: torch.Tensor) -> torch.Tensor:
    """The float64 mean of all rows, summed chunk by chunk (no float64 copy of the whole table)."""
    total = torch.zeros(table.shape[1:], dtype=torch.float64)
    for start in range(0, table.shape[0], CHUNK_ROWS):
        total += table[start:start + CHUNK_ROWS].double().sum(0)
    return total / table.shape[0]


def _fill_subword(new: torch.Tensor, old: torch.Tensor, rows: list[NewRow]) -> None:
    """Each row's mean of its source rows: float64 sums per chunk of new rows, rounded once."""
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start:start + CHUNK_ROWS]
        counts = np.fromiter((len(row.sources) for row in part), dtype=np.int64, count=len(part))
        flat = torch.from_numpy(np.fromiter((i for row in part for i in row.sources), dtype=np.int64,
                                            count=int(counts.sum())))
        owner = torch.from_numpy(np.repeat(np.arange(len(part)), counts))
        sums = torch.zeros((len(part), *old.shape[1:]), dtype=torch.float64)
        sums.index_add_(0, owner, old[flat].double())
        divisor = torch.from_numpy(counts.astype(np.float64))
        means = sums / divisor.reshape(-1, *([1] * (old.dim() - 1)))
        new[torch.tensor([row.new_id for row in part])] = means.to(old.dtype)


def _replace(root: nn.Module, old: nn.Parameter, new: nn.Parameter) -> None:
    """Point every module that holds ``old`` (tied weights, a head's shared bias) at ``new``."""
    for module in root.modules():
        for name, param in list(module._parameters.items()):
            if param is old:
                module._parameters[name] = new


def write_sources(transfer: VocabTransfer, path: Path) -> Path:
    """``vocab_transfer.tsv``: every new row's id, piece, method and the old ids it was averaged from."""
    lines = ["new_id\tpiece\tmethod\told_ids"]
    lines += [f"{row.new_id}\t{row.piece}\t{row.method}\t{','.join(map(str, row.sources))}"
              for row in transfer.new_rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
