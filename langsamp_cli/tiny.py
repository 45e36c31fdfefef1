"""Tiny XLM-R-shaped models for demos and tests (no download: config + locally trained tokenizer)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

from langsamp_cli.tokenizer import train_unigram_tokenizer

TINY_ARCH = dict(hidden_size=64, num_hidden_layers=8, num_attention_heads=4, intermediate_size=128)


def tiny_config(vocab_size: int, max_positions: int = 514, **overrides: int) -> XLMRobertaConfig:
    """An XLM-R config with 8 layers (so the paper's layer-8 protocol applies) and a small width."""
    arch = {**TINY_ARCH, **overrides}
    return XLMRobertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **arch,
    )


def build_tiny_model(
    texts: Iterable[str], output_dir: str | Path, vocab_size: int = 500, seed: int = 0, **arch: int
) -> Path:
    """Train a tokenizer on ``texts``, build a randomly initialised tiny masked LM, save both."""
    output_dir = Path(output_dir)
    tokenizer = train_unigram_tokenizer(texts, vocab_size, output_dir)
    torch.manual_seed(seed)
    model = XLMRobertaForMaskedLM(tiny_config(len(tokenizer), **arch))
    model.save_pretrained(str(output_dir))
    return output_dir
