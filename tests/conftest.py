"""Shared fixtures: tiny locally built models (no hub) and the optional ../shared/data pack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from langsamp_cli.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LANGSAMP_SHARED_DATA", REPO.parent / "shared" / "data"))

# A few real sentences per script so the tokenizer sees every script the tests use.
SAMPLE_TEXTS = {
    "eng_Latn": [
        "In the beginning was the word, and the word was with the people.",
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please enter a valid email address and try again later.",
    ],
    "spa_Latn": [
        "En el principio era la palabra y la palabra estaba con la gente.",
        "Por favor, introduzca una dirección de correo electrónico válida.",
    ],
    "rus_Cyrl": [
        "В начале было слово, и слово было у людей.",
        "Пожалуйста, введите правильный адрес электронной почты.",
    ],
    "zho_Hani": ["太初有道，道与人同在。", "请输入有效的电子邮件地址，然后重试。"],
    "arb_Arab": ["في البدء كانت الكلمة، والكلمة كانت مع الناس.", "يرجى إدخال عنوان بريد إلكتروني صالح."],
    "hin_Deva": ["आदि में वचन था, और वचन लोगों के साथ था।", "कृपया एक मान्य ईमेल पता दर्ज करें।"],
    "ell_Grek": ["Στην αρχή ήταν ο λόγος.", "Παρακαλώ εισάγετε μια έγκυρη διεύθυνση email."],
}


def all_sample_texts() -> list[str]:
    return [s for sents in SAMPLE_TEXTS.values() for s in sents] * 20


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


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded; on a busy 2-core machine 2 threads can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_sample_corpus(root: Path, langs: tuple[str, ...] = ("eng_Latn", "spa_Latn", "rus_Cyrl", "ell_Grek"),
                        first: int = 0, repeats: int = 12) -> Path:
    """One numbered file per language-script (another ``first`` gives the same sizes, other text)."""
    root.mkdir(parents=True, exist_ok=True)
    for lang_script in langs:
        lines = [f"{s} {i}" for i in range(first, first + repeats) for s in SAMPLE_TEXTS[lang_script]]
        (root / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def save_small_xlmr_config(path: Path, hidden_size: int = 32, layers: int = 2) -> Path:
    """A tiny XLM-R architecture for from-scratch pretraining tests (seconds per run)."""
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(vocab_size=10, hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden_size, max_position_embeddings=66,
                     type_vocab_size=1).save_pretrained(path)
    return path
