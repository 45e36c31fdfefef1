"""Two CPU processes (gloo) under torchrun: ranks draw different data yet end with identical weights;
a launcher that starts more processes than the node has GPUs is stopped with one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.model import load_checkpoint
from langsamp_cli.pretrain.run_dir import read_log
from langsamp_cli.pretrain.trainer import PARAM_HASH_ENV, check_gpus_per_node, parameter_hash
from helpers import SAMPLE_TEXTS


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
    # The CPU/gloo path wherever this runs: on a 1-GPU machine rank 1 would otherwise have no GPU.
    env = {**os.environ, PARAM_HASH_ENV: str(hashes), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "ACCELERATE_USE_CPU": "true"}
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


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A machine with exactly one visible GPU, as torch reports it."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    return monkeypatch


def test_more_processes_than_gpus_is_one_line(one_gpu: pytest.MonkeyPatch) -> None:
    one_gpu.setenv("LOCAL_RANK", "1")
    one_gpu.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(LangsampError) as caught:
        check_gpus_per_node()
    message = str(caught.value)
    assert "\n" not in message
    assert "started 2 processes" in message and "1 visible GPU(s)" in message and "--nproc_per_node 1" in message


def test_ranks_that_have_a_gpu_and_unlaunched_runs_pass(one_gpu: pytest.MonkeyPatch) -> None:
    one_gpu.setenv("LOCAL_RANK", "0")
    one_gpu.setenv("LOCAL_WORLD_SIZE", "2")
    assert check_gpus_per_node() is None  # rank 0 has its GPU (no error); rank 1 stops, the launcher ends the group
    one_gpu.setenv("LOCAL_RANK", "1")
    with pytest.raises(LangsampError, match="started 2 processes on this node but it has 1 visible GPU"):
        check_gpus_per_node()
    one_gpu.delenv("LOCAL_RANK")
    assert check_gpus_per_node() is None  # a plain `langsamp pretrain` is never checked
    one_gpu.setattr("torch.cuda.is_available", lambda: False)
    one_gpu.setenv("LOCAL_RANK", "3")
    assert check_gpus_per_node() is None  # the CPU/gloo path (CUDA_VISIBLE_DEVICES=) has no GPUs to count


def test_the_check_runs_before_accelerate_starts(one_gpu: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from langsamp_cli.pretrain import trainer

    one_gpu.setenv("LOCAL_RANK", "1")
    one_gpu.setenv("LOCAL_WORLD_SIZE", "2")
    one_gpu.setattr(trainer, "Accelerator", lambda **kwargs: pytest.fail("Accelerator created before the GPU check"))
    config = type("Config", (), {"mixed_precision": "no"})()
    with pytest.raises(LangsampError, match="LOCAL_RANK 1 has none"):
        trainer.make_accelerator(config, Console(stderr=True))
