"""MLM batches: pad the chunks, pick 15% of the maskable tokens, replace 80/10/10 (mask/random/keep).

Special and padding tokens are never selected; labels are -100 everywhere except at selected positions.
Random replacements are drawn from the ordinary vocabulary (never a special token), or, with
``random_from="all"`` (``--chunking official``), from the whole vocabulary as the official pipeline's
Hugging Face collator does. All randomness comes from the collator's own ``torch.Generator``, whose
state is saved with every checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.model import masked_positions_of
from langsamp_cli.pretrain.corpus import Example

IGNORE_INDEX = -100


def mask_tokens(input_ids: torch.Tensor, maskable: torch.Tensor, mask_token_id: int, random_pool: torch.Tensor,
                mlm_probability: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (corrupted input_ids, labels) for BERT-style masking of the positions where ``maskable``."""
    probs = torch.full(input_ids.shape, mlm_probability)
    selected = torch.bernoulli(probs, generator=generator).bool() & maskable
    if not selected.any() and maskable.any():
        # A batch without any target would give a NaN loss: pick one maskable position instead.
        candidates = maskable.nonzero()
        selected[tuple(candidates[torch.randint(len(candidates), (1,), generator=generator)].T)] = True
    labels = torch.where(selected, input_ids, IGNORE_INDEX)
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & selected
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & selected & ~to_mask
    corrupted = input_ids.clone()
    corrupted[to_mask] = mask_token_id
    picks = torch.randint(len(random_pool), input_ids.shape, generator=generator)
    corrupted[to_random] = random_pool[picks[to_random]]
    return corrupted, labels


def check_tokenizer(tokenizer: Any, random_pool: torch.Tensor | None = None) -> None:
    """A one-line error for a tokenizer MLM cannot train with (no mask/pad token, nothing but special tokens)."""
    name = getattr(tokenizer, "name_or_path", "") or "the tokenizer"
    special = set(tokenizer.all_special_ids)
    if random_pool is None:
        ordinary = any(i not in special for i in range(len(tokenizer)))
    else:
        ordinary = bool(len(random_pool))
    if not ordinary:
        raise LangsampError(f"{name}: the tokenizer has no ordinary (non-special) tokens to train on; "
                            "use a real tokenizer (or let pretrain train one on the corpus)")
    for role in ("mask", "pad"):
        if getattr(tokenizer, f"{role}_token_id") is None:
            raise LangsampError(f"{name}: the tokenizer has no {role} token, which masked-LM pretraining needs; "
                                "use a tokenizer with <mask> and <pad> (e.g. an XLM-R one)")


class MLMCollator:
    """Examples from the ChunkSampler -> the model's keyword arguments (with lang_ids/script_ids per example, and
    ``masked_positions``: the flat indices of the targets, ``(labels.view(-1) != -100).nonzero()``)."""

    def __init__(self, tokenizer: Any, mlm_probability: float = 0.15, seed: int = 0, random_from: str = "ordinary"):
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.mlm_probability = mlm_probability
        special = set(tokenizer.all_special_ids)
        self.special_ids = torch.tensor(sorted(special))
        ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special], dtype=torch.long)
        check_tokenizer(tokenizer, ordinary)
        if random_from not in ("ordinary", "all"):
            raise LangsampError(f"random_from {random_from!r}: use 'ordinary' or 'all'")
        self.random_pool = ordinary if random_from == "ordinary" else torch.arange(len(tokenizer), dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        length = max(len(e.input_ids) for e in examples)
        input_ids = torch.full((len(examples), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), length), dtype=torch.long)
        for row, example in enumerate(examples):
            input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
            attention_mask[row, : len(example.input_ids)] = 1
        maskable = ~torch.isin(input_ids, self.special_ids)
        corrupted, labels = mask_tokens(input_ids, maskable, self.mask_id, self.random_pool,
                                        self.mlm_probability, self.generator)
        return {
            "input_ids": corrupted,
            "attention_mask": attention_mask,
            "labels": labels,
            # Found here on the host, so the model selects the target rows without waiting for the device.
            "masked_positions": masked_positions_of(labels),
            "lang_ids": torch.tensor([e.lang_id for e in examples]),
            "script_ids": torch.tensor([e.script_id for e in examples]),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
