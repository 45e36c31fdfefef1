"""Will the model fit? A lower bound of training memory from the model config, checked before anything is built.

A ``config.json`` with 10,000 layers or ``--max-seq-len 100000`` would otherwise ask the allocator for
terabytes and die with its traceback. The estimate counts only what training surely holds at once: fp32
weights, gradients and the two AdamW moments (16 bytes per parameter), the hidden states every layer keeps
for the backward pass, and one layer's attention scores. Real use is higher, so a refusal is never wrong;
a run that passes can still run out of memory later (then the CLI says so in one line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from langsamp_cli.errors import LangsampError

BYTES_PER_PARAMETER = 16   # fp32 weight + gradient + AdamW exp_avg + exp_avg_sq
GB = 1024 ** 3


@dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    state_bytes: int         # weights, gradients, optimiser moments
    activation_bytes: int    # kept hidden states + one layer's attention scores

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes


def _field(model_config: Any, name: str, default: int) -> int:
    value = getattr(model_config, name, None)
    return int(value) if isinstance(value, int) and value > 0 else default


def estimate_training_memory(model_config: Any, batch_size: int, seq_len: int) -> MemoryEstimate:
    """Lower bound for an encoder MLM (BERT/RoBERTa/XLM-R layout) trained with AdamW in fp32."""
    hidden = _field(model_config, "hidden_size", 768)
    layers = _field(model_config, "num_hidden_layers", 12)
    inner = _field(model_config, "intermediate_size", 4 * hidden)
    vocab = _field(model_config, "vocab_size", 250_002)
    positions = _field(model_config, "max_position_embeddings", seq_len + 2)
    heads = _field(model_config, "num_attention_heads", 12)
    per_layer = 4 * hidden * hidden + 2 * hidden * inner + 9 * hidden + inner
    parameters = (vocab + positions + 2) * hidden + layers * per_layer + hidden * hidden + vocab
    tokens = batch_size * seq_len
    kept_states = tokens * layers * (2 * hidden + inner) * 4
    attention_scores = batch_size * heads * seq_len * seq_len * 4
    return MemoryEstimate(parameters, parameters * BYTES_PER_PARAMETER, kept_states + attention_scores)


def machine_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes of memory training can use on ``device`` and what it is called (None when unknown)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return torch.cuda.get_device_properties(device).total_memory, f"GPU memory ({name})"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "memory"
    except (ValueError, OSError, AttributeError):
        return None, "memory"


def check_fits(model_config: Any, batch_size: int, seq_len: int, device: torch.device, model: str) -> None:
    """A LangsampError with the estimate and the machine's memory when training surely cannot fit."""
    estimate = estimate_training_memory(model_config, batch_size, seq_len)
    available, what = machine_memory(device)
    if available is None or estimate.total_bytes <= available:
        return
    raise LangsampError(
        f"--model {model}: training needs at least {estimate.total_bytes / GB:,.1f} GB "
        f"({estimate.parameters / 1e6:,.1f}M parameters: {estimate.state_bytes / GB:,.1f} GB for weights, gradients "
        f"and AdamW; {estimate.activation_bytes / GB:,.1f} GB of activations for --batch-size {batch_size} x "
        f"--max-seq-len {seq_len}) but this machine has {available / GB:,.1f} GB of {what}; lower --batch-size "
        "(use --grad-accum) or --max-seq-len, or use a smaller model config")
