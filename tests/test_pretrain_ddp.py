"""Two CPU processes (gloo) under torchrun: ranks draw different data yet end with identical weights."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from langsamp_cli.model import load_checkpoint
from langsamp_cli.pretrain.trainer import PARAM_HASH_ENV, parameter_hash, read_log
from tests.conftest import SAMPLE_TEXTS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_two_processes_stay_in_sync(tiny_model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang_script in ("eng_Latn", "rus_Cyrl", "zho_Hani"):
        lines = [f"{s} {i}" for i in range(10) for s in SAMPLE_TEXTS[lang_script]]
        (corpus / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from transformers import XLMRobertaConfig

    arch = tmp_path / "arch"
    XLMRobertaConfig(vocab_size=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=66, type_vocab_size=1).save_pretrained(arch)
    out, hashes = tmp_path / "run", tmp_path / "hashes"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    command = [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "langsamp_cli", "pretrain", "--corpus", str(corpus), "--model", str(arch), "--from-scratch",
               "--tokenizer", str(tiny_model_dir), "--output-dir", str(out), "--max-steps", "4", "--save-every", "2",
               "--max-seq-len", "32", "--batch-size", "2", "--grad-accum", "2", "--log-every", "1", "--no-progress"]
    env = {**os.environ, PARAM_HASH_ENV: str(hashes), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]

    rank_hashes = [(hashes / f"rank{r}.sha256").read_text().strip() for r in (0, 1)]
    assert rank_hashes[0] == rank_hashes[1], "the two ranks ended with different weights"
    assert parameter_hash(load_checkpoint(out / "final")) == rank_hashes[0]   # rank 0 saved what it trained

    records = [r for r in read_log(out / "log.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3, 4]                      # one writer: no duplicated lines
    assert sum(records[-1]["chunks_per_language"].values()) == 4 * 2 * 2 * 2  # steps x batch x accum x ranks
    assert records[-1]["tokens"] == 4 * 2 * 2 * 2 * 32
    assert result.stdout.count("final model:") == 1                          # only rank 0 reports
    import torch

    state = torch.load(out / "checkpoints" / "step-4" / "trainer_state.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    assert state["ranks"][0]["sampler"]["rng"] != state["ranks"][1]["sampler"]["rng"]  # (seed, rank) streams
