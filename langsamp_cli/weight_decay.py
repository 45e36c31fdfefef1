"""Which parameters AdamW decays: one rule for pretraining and fine-tuning.

Biases and normalisation weights are never decayed (the BERT/RoBERTa recipe, and what the Hugging Face
``Trainer`` behind the official scripts does: names containing ``bias`` or ``LayerNorm``/``layer_norm``); nor
are LangSAMP's language and script tables, which are embedding lookups trained only at masked positions (decay
would shrink the rows of rarely sampled languages between their updates). Frozen parameters are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

NO_DECAY_NAMES = ("bias", "LayerNorm", "layer_norm", "lang_embeddings", "script_embeddings")


def decays(name: str) -> bool:
    """Whether the parameter called ``name`` gets weight decay."""
    return not any(part in name for part in NO_DECAY_NAMES)


def weight_decay_groups(named_parameters: Iterable[tuple[str, torch.nn.Parameter]], weight_decay: float
                        ) -> list[dict]:
    """Two AdamW parameter groups: decayed at ``weight_decay``, and not decayed."""
    decay, no_decay = [], []
    for name, param in named_parameters:
        if param.requires_grad:
            (decay if decays(name) else no_decay).append(param)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
