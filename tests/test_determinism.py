"""Same input, same model: tokenizer training and a fresh pretraining run are reproducible bit for bit."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import torch

from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.trainer import pretrain
from langsamp_cli.tokenizer import train_unigram_tokenizer, unigram_vocab
from helpers import SAMPLE_TEXTS, all_sample_texts

VOCAB_SCRIPT = """
import hashlib, json, sys
sys.path[:0] = [{repo!r}, {repo!r} + '/tests']
from langsamp_cli.tokenizer import unigram_vocab
from helpers import all_sample_texts
print(hashlib.sha256(json.dumps(unigram_vocab(all_sample_texts(), 300)).encode()).hexdigest())
"""


def _digest(vocab) -> str:
    import json

    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()


def test_tokenizer_vocab_is_identical_across_processes_and_input_order() -> None:
    repo = str(Path(__file__).resolve().parents[1])
    other_process = subprocess.run([sys.executable, "-c", VOCAB_SCRIPT.format(repo=repo)], capture_output=True,
                                   text=True, check=True, cwd=repo).stdout.strip()
    texts = all_sample_texts()
    here = unigram_vocab(texts, 300)
    assert other_process == _digest(here) and unigram_vocab(texts, 300) == here
    assert unigram_vocab(list(reversed(texts)), 300) == here  # the input is sorted first
    assert [piece for piece, _ in here[:4]] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_trained_tokenizer_keeps_the_xlmr_layout(tmp_path: Path) -> None:
    tokenizer = train_unigram_tokenizer(all_sample_texts(), 300, tmp_path)
    assert (tokenizer.cls_token_id, tokenizer.pad_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id) == \
        (0, 1, 2, 3)
    assert tokenizer.mask_token_id == len(tokenizer) - 1
    ids = tokenizer("The quick brown fox")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and 3 not in ids
    assert (tmp_path / "tokenizer_config.json").is_file()


def test_two_fresh_pretraining_runs_are_bit_identical(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang_script in ("eng_Latn", "rus_Cyrl", "ell_Grek"):
        lines = [f"{s} {i}" for i in range(10) for s in SAMPLE_TEXTS[lang_script]]
        (corpus / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        finals = []
        for name in ("a", "b"):
            config = build_config("demo", None, dict(
                corpus=str(corpus), from_scratch=True, tokenizer=None, vocab_size=300, output_dir=str(tmp_path / name),
                max_seq_len=32, batch_size=2, grad_accum=1, max_steps=3, save_every=3, log_every=1, seed=7))
            finals.append(pretrain(config, progress=False).final_dir)
    finally:
        torch.set_num_threads(threads)
    a, b = finals
    for name in ("tokenizer.json", "model.safetensors", "langsamp_embeddings.safetensors"):
        if (a / name).is_file() or (b / name).is_file():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").is_file()
