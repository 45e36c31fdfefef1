"""Batches prepared ahead of training: the same batches, the same weights, exact checkpoints and logged losses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.model import load_checkpoint
from langsamp_cli.pretrain.collate import MLMCollator
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.corpus import ChunkSampler, scan_corpus
from langsamp_cli.pretrain.prefetch import StepPrefetcher
from langsamp_cli.pretrain.checkpoints import STATE_FILE
from langsamp_cli.pretrain.run_dir import read_log
from langsamp_cli.pretrain.trainer import parameter_hash, pretrain
from helpers import small_pretrain_settings


@pytest.fixture
def make_config(corpus_dir: Path, tiny_model_dir: Path, small_arch: Path):
    """A few steps of a small model; cache_bytes 1500 streams the larger languages (their state has a buffer)."""
    def make(output_dir: Path, **overrides):
        settings = small_pretrain_settings(corpus_dir, small_arch, tiny_model_dir, output_dir, keep_last=3,
                                           cache_bytes=1500)
        return build_config("demo", None, {**settings, **overrides})
    return make


def run(config, **kwargs):
    return pretrain(config, progress=False, **kwargs)


def final_hash(result) -> str:
    return parameter_hash(load_checkpoint(result.final_dir))


def stream(corpus_dir: Path, tiny_model_dir: Path, seed: int = 3) -> tuple[ChunkSampler, MLMCollator]:
    corpus = scan_corpus(corpus_dir)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    lang2id = {"ell": 0, "eng": 1, "rus": 2, "spa": 3}
    script2id = {"Cyrl": 0, "Grek": 1, "Latn": 2}
    sampler = ChunkSampler(corpus, tokenizer, lang2id, script2id, 24, 0.3, seed, cache_bytes=1500)
    return sampler, MLMCollator(tokenizer, 0.15, seed=seed)


def test_background_batches_equal_batches_built_in_the_loop(corpus_dir, tiny_model_dir) -> None:
    sampler, collator = stream(corpus_dir, tiny_model_dir)
    reference = StepPrefetcher(sampler, collator, 3, 2, first_step=1, background=False)
    expected = [next(reference) for _ in range(7)]
    sampler, collator = stream(corpus_dir, tiny_model_dir)
    with StepPrefetcher(sampler, collator, 3, 2, first_step=1, wants_state=lambda s: s % 3 == 0, depth=3) as ahead:
        got = [next(ahead) for _ in range(7)]
        # the thread has run ahead of the 7 consumed steps, the checkpoint view has not
        assert ahead.consumed_step == 7
        with pytest.raises(RuntimeError, match="no data-stream state was kept for step 7"):
            ahead.consumed_sampler.state_dict()
    for mine, theirs in zip(got, expected):
        assert mine.step == theirs.step and mine.tokens == theirs.tokens and mine.counts == theirs.counts
        assert mine.tokens == sum(int(b["attention_mask"].sum()) for b in theirs.batches)
        for a, b in zip(mine.batches, theirs.batches):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert got[5].sampler_state == expected[5].sampler_state
    assert torch.equal(got[5].collator_state["generator"], expected[5].collator_state["generator"])
    assert got[4].sampler_state is None


def test_consumed_state_is_the_state_after_the_last_consumed_step(corpus_dir, tiny_model_dir) -> None:
    """Independent check: a fresh sampler/collator that draws exactly 4 steps' batches has the checkpointed state."""
    fresh_sampler, fresh_collator = stream(corpus_dir, tiny_model_dir)
    for _ in range(4 * 2):
        fresh_collator(fresh_sampler.next_batch(3))
    sampler, collator = stream(corpus_dir, tiny_model_dir)
    with StepPrefetcher(sampler, collator, 3, 2, first_step=1) as ahead:
        before = ahead.consumed_sampler.state_dict()
        for _ in range(4):
            next(ahead)
        assert ahead.consumed_sampler.state_dict() == fresh_sampler.state_dict()
        assert torch.equal(ahead.consumed_collator.state_dict()["generator"], fresh_collator.generator.get_state())
        assert ahead.consumed_counts == dict(fresh_sampler.counts)
    assert before["counts"] == {} and before["streams"] == {}


def test_a_failure_in_the_prefetch_thread_is_raised_in_the_loop(corpus_dir, tiny_model_dir) -> None:
    sampler, collator = stream(corpus_dir, tiny_model_dir)
    calls = []

    def failing_batch(size: int):
        calls.append(size)
        if len(calls) > 4:  # steps 1 and 2 (2 micro-batches each) are fine, step 3 fails
            raise LangsampError("corpus.txt: no tokens for xxx_Latn")
        return [sampler.next_example() for _ in range(size)]

    sampler.next_batch = failing_batch
    with StepPrefetcher(sampler, collator, 2, 2, first_step=1) as ahead:
        next(ahead), next(ahead)
        with pytest.raises(LangsampError, match="no tokens for xxx_Latn"):
            next(ahead)


def test_training_with_prefetch_equals_training_without_it_bit_for_bit(make_config, tmp_path) -> None:
    on = run(make_config(tmp_path / "on"))
    off = run(make_config(tmp_path / "off"), prefetch=False)
    assert final_hash(on) == final_hash(off)
    strip = [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")}
             for r in read_log(tmp_path / "on" / "log.jsonl")]
    assert strip == [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")}
                     for r in read_log(tmp_path / "off" / "log.jsonl")]
    assert [r["step"] for r in strip] == [1, 2, 3, 4, 5, 6]


def test_stop_and_resume_with_prefetch_gives_the_uninterrupted_weights(make_config, tmp_path,
                                                                       corpus_dir, tiny_model_dir) -> None:
    straight = run(make_config(tmp_path / "straight", max_steps=7, save_every=3))
    first = run(make_config(tmp_path / "resumed", max_steps=7, save_every=3), stop_after_steps=4)
    assert first.final_dir is None
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "step-4" / STATE_FILE, weights_only=False)
    # the checkpoint holds the stream after 4 steps x 2 micro-batches x 2 chunks, not after a prefetched step
    assert sum(saved["ranks"][0]["sampler"]["counts"].values()) == 4 * 2 * 2
    resumed = run(make_config(tmp_path / "resumed", max_steps=7, save_every=3), resume=True)
    assert resumed.steps == 7
    assert final_hash(resumed) == final_hash(straight)
    losses = [(r["step"], r["loss"]) for r in read_log(tmp_path / "resumed" / "log.jsonl") if "loss" in r]
    assert losses == [(r["step"], r["loss"]) for r in read_log(tmp_path / "straight" / "log.jsonl") if "loss" in r]


def test_logged_loss_is_the_mean_of_the_per_step_losses(make_config, tmp_path, monkeypatch) -> None:
    """The loop reads losses back only when it logs; the number is what reading every step gave before."""
    from langsamp_cli.pretrain import trainer

    per_step: list[float] = []
    real_step = trainer.train_step

    def recording_step(*args, **kwargs):
        loss = real_step(*args, **kwargs)
        per_step.append(float(loss))  # the old loop's per-step float(loss)
        return loss

    monkeypatch.setattr(trainer, "train_step", recording_step)
    run(make_config(tmp_path / "run", max_steps=7, log_every=3))
    records = [r for r in read_log(tmp_path / "run" / "log.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == [3, 6, 7]
    windows = [per_step[0:3], per_step[3:6], per_step[6:7]]
    for record, window in zip(records, windows):
        old_way = float(torch.tensor(sum(window) / len(window)))  # the old mean_over_ranks on one process
        assert record["loss"] == round(old_way, 6)
    assert all(loss > 0 for loss in per_step) and len(set(per_step)) > 1


def test_compile_flag_is_opt_in_and_recorded(make_config, tmp_path, monkeypatch) -> None:
    compiled = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    run(make_config(tmp_path / "plain", max_steps=1))
    assert compiled == []
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["config"]["compile"] is False
    run(make_config(tmp_path / "compiled", max_steps=1, compile=True))
    assert compiled == ["LangSAMPForMaskedLM"]
    assert json.loads((tmp_path / "compiled" / "run.json").read_text())["config"]["compile"] is True
    with pytest.raises(LangsampError, match="compile: 'sometimes' is not true or false"):
        build_config("demo", None, {"compile": "sometimes"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_prefetch_pinned_fused_matches_in_loop_batches(make_config, tmp_path) -> None:
    """On a GPU: pinned batches, non-blocking copies and fused AdamW give the same run with and without prefetch
    (close, not bit-equal: some CUDA backward kernels accumulate in a varying order)."""
    on = run(make_config(tmp_path / "on"))
    off = run(make_config(tmp_path / "off"), prefetch=False)
    a, b = load_checkpoint(on.final_dir).state_dict(), load_checkpoint(off.final_dir).state_dict()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4), key
    logs = [[r["loss"] for r in read_log(p / "log.jsonl") if "loss" in r] for p in (tmp_path / "on", tmp_path / "off")]
    assert logs[0] == pytest.approx(logs[1], abs=1e-3)


def test_cli_compile_flag_reaches_the_config(monkeypatch, tmp_path) -> None:
    from langsamp_cli.cli import main
    from langsamp_cli.pretrain import trainer

    monkeypatch.setenv("COLUMNS", "120")  # the CLI would otherwise widen Rich for the rest of this process
    seen = []

    def fake_pretrain(config, **kwargs):
        seen.append(config.compile)
        raise LangsampError("stop here")

    monkeypatch.setattr(trainer, "pretrain", fake_pretrain)
    for flags, expected in (([], False), (["--compile"], True), (["--no-compile"], False)):
        with pytest.raises(SystemExit) as info:
            main(["pretrain", "--output-dir", str(tmp_path / "o"), *flags])
        assert info.value.code == 2
        assert seen[-1] is expected
