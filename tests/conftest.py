"""Shared fixtures: tiny locally built models (no hub) and the optional ../shared/data pack."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import SHARED_DATA, all_sample_texts, save_small_xlmr_config, write_sample_corpus
from langsamp_cli.tiny import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-layer, 64-wide XLM-R masked LM with a locally trained Unigram tokenizer."""
    return build_tiny_model(all_sample_texts(), tmp_path_factory.mktemp("tiny_model"), vocab_size=400)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a clean skip when the data pack is not beside the checkout."""
    if not (SHARED_DATA / "SOURCES.md").exists():
        pytest.skip(f"shared data pack not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run fastest single-threaded; on a busy 2-core machine 2 threads can be 10x slower.

    Session-scoped so module-scoped fixtures (shared fine-tunes) run single-threaded too: same speed, and the
    same float summation order as a test that repeats their run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def short_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with 34 position embeddings (32 usable), like the 128-token demo models but smaller."""
    return build_tiny_model(all_sample_texts(), tmp_path_factory.mktemp("short_model"), vocab_size=400,
                            max_positions=34)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four language-scripts of numbered sample sentences (a pretraining corpus)."""
    return write_sample_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def small_arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide XLM-R config (from scratch through AutoConfig): keeps every run to seconds."""
    return save_small_xlmr_config(tmp_path_factory.mktemp("arch"))
