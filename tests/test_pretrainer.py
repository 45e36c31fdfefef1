"""The pretraining loop: exact resume, checkpoints, output-dir safety, early stopping, language maps, CLI errors."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from langsamp_cli.errors import LangsampError
from langsamp_cli.model import load_checkpoint
from langsamp_cli.pretrain.config import PRESETS, PretrainConfig, build_config
from langsamp_cli.pretrain.checkpoints import STATE_FILE, TrainState
from langsamp_cli.pretrain.run_dir import read_log
from langsamp_cli.pretrain.trainer import evaluate_and_maybe_stop, parameter_hash, pretrain
from helpers import run_cli, small_pretrain_settings

SUBPROCESS_ENV = {"COLUMNS": "200", "OMP_NUM_THREADS": "1"}



@pytest.fixture
def make_config(corpus_dir: Path, tiny_model_dir: Path, small_arch: Path):
    """Settings for a few-step run of the small model on the test corpus (the tokenizer of tiny_model_dir)."""
    def make(output_dir: Path, **overrides):
        settings = small_pretrain_settings(corpus_dir, small_arch, tiny_model_dir, output_dir)
        return build_config("demo", None, {**settings, **overrides})
    return make


def run(config, **kwargs):
    return pretrain(config, progress=False, **kwargs)


def loss_log(output_dir: Path) -> list[tuple]:
    return [(r["step"], r["loss"], r["lr"], r["chunks_per_language"]) for r in read_log(output_dir / "log.jsonl")
            if "loss" in r]


def test_resume_continues_exactly_like_an_uninterrupted_run(make_config, tmp_path) -> None:
    straight = run(make_config(tmp_path / "straight"))
    assert straight.steps == 6 and straight.final_dir.is_dir()

    interrupted = run(make_config(tmp_path / "resumed"), stop_after_steps=3)
    assert interrupted.final_dir is None and not (tmp_path / "resumed" / "final").exists()
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-2", "step-3"]
    resumed = run(make_config(tmp_path / "resumed"), resume=True)
    assert resumed.steps == 6

    expected = loss_log(tmp_path / "straight")
    assert [r[0] for r in expected] == [1, 2, 3, 4, 5, 6]
    assert loss_log(tmp_path / "resumed") == expected
    for name in ("model.safetensors", "langsamp_embeddings.safetensors"):
        a, b = load_file(str(straight.final_dir / name)), load_file(str(resumed.final_dir / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_checkpoints_logs_and_final_model(make_config, tmp_path) -> None:
    out = tmp_path / "run"
    result = run(make_config(out, max_steps=5, keep_last=2, log_every=2))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-4", "step-5"]   # keep_last 2
    state = torch.load(out / "checkpoints" / "step-5" / STATE_FILE, weights_only=False)
    assert state["step"] == 5 and state["world_size"] == 1
    assert {"sampler", "collator", "rng"} <= set(state["ranks"][0])
    assert {"python", "numpy", "torch", "cuda"} == set(state["ranks"][0]["rng"])
    records = read_log(out / "log.jsonl")
    assert [r["step"] for r in records] == [2, 4, 5]
    assert all(r["tokens_per_s"] > 0 and r["loss"] > 0 for r in records)
    # chunks per language sum to the chunks drawn: steps x batch x grad_accum
    assert sum(records[-1]["chunks_per_language"].values()) == 5 * 2 * 2
    model = load_checkpoint(result.final_dir)
    assert model.variant == "both"
    assert model.lang2id == {"ell": 0, "eng": 1, "rus": 2, "spa": 3}
    assert model.script2id == {"Cyrl": 0, "Grek": 1, "Latn": 2}
    final_hash = parameter_hash(load_checkpoint(out / "checkpoints" / "step-5").mlm)
    assert parameter_hash(model.mlm) == final_hash
    from transformers import AutoModelForMaskedLM
    AutoModelForMaskedLM.from_pretrained(str(result.final_dir))  # a plain HF checkpoint too


def test_existing_output_dir_is_never_overwritten_silently(make_config, tmp_path) -> None:
    out = tmp_path / "run"
    run(make_config(out, max_steps=2))
    before = (out / "final" / "model.safetensors").read_bytes()
    with pytest.raises(LangsampError, match="holds a finished run.*--overwrite.*--resume"):
        run(make_config(out, max_steps=2))
    assert (out / "final" / "model.safetensors").read_bytes() == before
    result = run(make_config(out, max_steps=2), resume=True)  # nothing left to do
    assert result.steps == 2 and (out / "final" / "model.safetensors").read_bytes() == before

    other = tmp_path / "not_a_run"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    with pytest.raises(LangsampError, match="not a pretraining run; refusing to --overwrite"):
        run(make_config(other), overwrite=True)
    assert (other / "notes.txt").read_text() == "precious"
    with pytest.raises(LangsampError, match="already exists"):
        run(make_config(other))


def test_continued_pretraining_reuses_the_mapping_and_rejects_unknown_languages(make_config, tmp_path) -> None:
    first = run(make_config(tmp_path / "first", max_steps=1, languages=["eng_Latn",
                                                                                                     "rus_Cyrl"]))
    continued = run(make_config(tmp_path / "second", model=str(first.final_dir),
                                from_scratch=False, tokenizer=None, max_steps=1, languages=["eng_Latn"]))
    model = load_checkpoint(continued.final_dir)
    assert model.lang2id == {"eng": 0, "rus": 1} and model.script2id == {"Cyrl": 0, "Latn": 1}
    third = run(make_config(tmp_path / "third", model=str(first.final_dir),
                            from_scratch=False, tokenizer=None, max_steps=1))
    extended = load_checkpoint(third.final_dir)
    assert {k: extended.lang2id[k] for k in ("eng", "rus")} == {"eng": 0, "rus": 1}
    assert extended.initialised_rows["lang"]["ell"]["method"] == "random"
    with pytest.raises(LangsampError, match=r"lacks corpus language-script\(s\) ell_Grek, spa_Latn"):
        run(make_config(tmp_path / "fourth", model=str(first.final_dir), from_scratch=False, tokenizer=None,
                        max_steps=1, lang_map=str(first.final_dir / "langsamp.json")))


def test_early_stopping_keeps_the_best_model(make_config, tmp_path) -> None:
    out = tmp_path / "run"
    calls = []

    def stop_at_second_eval(step: int, metrics: dict[str, float]) -> bool:
        calls.append((step, metrics))
        return len(calls) == 2

    result = run(make_config(out, max_steps=10, eval_every=2, eval_lines=5),
                 early_stop=stop_at_second_eval)
    assert result.stopped_early and result.steps == 4
    assert [step for step, _ in calls] == [2, 4]
    assert set(calls[0][1]) == {"eval_loss"} | {f"eval_loss/{k}" for k in ("ell_Grek", "eng_Latn", "rus_Cyrl",
                                                                           "spa_Latn")}
    evals = [r for r in read_log(out / "log.jsonl") if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 4] and evals[-1]["stopped_early"]
    assert (out / "best" / "langsamp.json").is_file() and (out / "final" / "langsamp.json").is_file()


def test_patience_counts_evaluations_without_improvement(monkeypatch, tmp_path) -> None:
    from langsamp_cli.pretrain import trainer

    losses = iter([3.0, 2.0, 2.5, 2.0, 2.1])
    monkeypatch.setattr(trainer, "heldout_losses", lambda *a, **k: {"eng_Latn": next(losses)})
    monkeypatch.setattr("langsamp_cli.model.save_checkpoint", lambda model, tok, path: Path(path).mkdir(
        parents=True, exist_ok=True))

    class OneProcess:
        is_main_process, num_processes = True, 1

        def unwrap_model(self, model):
            return model

    config = build_config("demo", None, dict(patience=2, eval_every=1))
    state = TrainState()
    stopped_at = None
    for step in range(1, 6):
        state.step = step
        evaluate_and_maybe_stop(None, {"eng_Latn": []}, None, state, config, OneProcess(), tmp_path,
                                None, lambda *a, **k: None)
        if state.stopped_early:
            stopped_at = step
            break
    # 3.0 best, 2.0 best, 2.5 worse (1), 2.0 not better (2) -> stop at the 4th evaluation
    assert stopped_at == 4 and state.best_step == 2 and state.best_eval == 2.0


def test_config_precedence_and_presets(tmp_path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("max-steps: 77\nlr: 0.01\nbatch_size: 3\n")
    config = build_config("paper", yaml_file, {"lr": 0.5, "batch_size": None})
    assert (config.max_steps, config.lr, config.batch_size) == (77, 0.5, 3)
    assert config.grad_accum == PRESETS["paper"]["grad_accum"] == 8
    paper = build_config("paper")
    assert paper.batch_size * paper.grad_accum * 4 == 1024 and paper.max_seq_len == 512
    assert (paper.max_steps, paper.save_every, paper.lr, paper.alpha) == (150_000, 5000, 5e-5, 0.3)
    assert (paper.adam_betas, paper.adam_eps) == ((0.9, 0.999), 1e-6)
    (tmp_path / "bad.yaml").write_text("learning_rate: 1\n")
    with pytest.raises(LangsampError, match="bad.yaml: unknown key 'learning_rate' for pretraining; known keys: adam_betas"):
        build_config("demo", tmp_path / "bad.yaml")
    assert build_config("demo", None, {"lang_emb": False}).variant == "script"
    assert build_config("demo").is_from_scratch  # the tiny demo model has no weights to continue
    continued = build_config("demo", None, {"model": "runs/some-checkpoint"})
    assert not continued.is_from_scratch  # a checkpoint given with --model is continued unless --from-scratch
    assert build_config("demo", None, {"model": "xlm-roberta-base", "from_scratch": True}).is_from_scratch


def test_the_command_without_a_preset_runs_the_field_defaults(tmp_path, capsys) -> None:
    """Each pretraining default lives once, on its field: no --preset is PretrainConfig() and the paper preset
    changes only what it names."""
    defaults = PretrainConfig()
    assert build_config() == build_config(None) == defaults
    paper = build_config("paper")
    changed = {f.name for f in dataclasses.fields(PretrainConfig) if getattr(paper, f.name) != getattr(defaults, f.name)}
    assert changed and changed <= set(PRESETS["paper"])
    assert run_cli(["pretrain", "--dry-run", "--output-dir", str(tmp_path / "run")]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["lr"] == ["0.001", "default"] and rows["max_steps"] == [str(defaults.max_steps), "default"]


@pytest.mark.parametrize(("values", "flag_error", "yaml_error"), [
    ({"max_seq_len": 4}, "--max-seq-len 4: use at least 8", "max_seq_len 4: use at least 8"),
    ({"batch_size": 0}, "--batch-size 0: use at least 1", "batch_size 0: use at least 1"),
    ({"keep_last": 0}, "--keep-last 0: use at least 1", "keep_last 0: use at least 1"),
    ({"vocab_size": 50}, "--vocab-size 50: use at least 100 (the corpus's characters",
     "vocab_size 50: use at least 100 (the corpus's characters"),
    ({"mlm_probability": 1}, "--mlm-probability: 1 must be below 1; fix the value",
     "mlm_probability: 1 must be below 1; fix the value"),
    ({"lr": 0}, "--lr: 0 must be greater than 0; fix the value", "lr: 0 must be greater than 0; fix the value"),
])
def test_every_limit_holds_wherever_the_value_comes_from(values, flag_error, yaml_error, tmp_path) -> None:
    """A limit is declared once, with its field: a flag, a --config file and a run's recorded settings (what a
    resume rebuilds with validate()) are refused the same way."""
    with pytest.raises(LangsampError, match="^" + re.escape(flag_error)):
        build_config(None, None, values)
    config = tmp_path / "run.yaml"
    config.write_text("".join(f"{key}: {value}\n" for key, value in values.items()), encoding="utf-8")
    with pytest.raises(LangsampError, match="^" + re.escape(f"{config}:1: {yaml_error}")):
        build_config(None, config)
    with pytest.raises(LangsampError, match="^" + re.escape(flag_error)):
        PretrainConfig(**values).validate()


def cli(*args: str, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "langsamp_cli", "pretrain", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env={**os.environ, **SUBPROCESS_ENV})


@pytest.mark.parametrize("args, pattern", [
    (["--corpus", "{tmp}/missing"], "missing: no such directory; pass a folder"),
    (["--mixed-precision", "fp8", "--output-dir", "{tmp}/o"], "--mixed-precision: 'fp8' is not one of no, bf16, fp16"),
    (["--preset", "huge"], "--preset huge: choose one of demo, paper"),
])
def test_cli_bad_input_is_one_line_error(args: list[str], pattern: str, tmp_path, capsys) -> None:
    from langsamp_cli.cli import main

    with pytest.raises(SystemExit) as info:
        main(["pretrain", *(a.format(tmp=tmp_path) for a in args)])
    assert info.value.code == 2, args
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("error: ") == 1, err
    assert pattern in " ".join(err.split()), err  # Rich may wrap a long line; compare the words


def test_cli_error_output_is_a_single_line(tmp_path) -> None:
    bad = tmp_path / "corpus"
    bad.mkdir()
    (bad / "english.txt").write_text("hi\n")
    result = cli("--corpus", str(bad), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "english.txt: name is not a language-script id" in lines[0]


def test_kill_minus_nine_leaves_no_partial_checkpoint_and_resume_works(corpus_dir, tiny_model_dir, small_arch,
                                                                       tmp_path) -> None:
    out = tmp_path / "run"
    args = ["--corpus", str(corpus_dir), "--model", str(small_arch), "--from-scratch", "--tokenizer",
            str(tiny_model_dir), "--output-dir", str(out), "--max-seq-len", "32", "--batch-size", "2",
            "--save-every", "1", "--keep-last", "3", "--log-every", "1", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "langsamp_cli", "pretrain", *args, "--max-steps", "100000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **SUBPROCESS_ENV})
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (out / "checkpoints" / "step-4").exists():
            time.sleep(0.05)
        time.sleep(0.13)  # land somewhere inside a later step or save
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    visible = [p for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")]
    assert visible, "the run should have written checkpoints before the kill"
    for checkpoint in visible:
        assert (checkpoint / STATE_FILE).is_file() and (checkpoint / "model.safetensors").is_file()
        assert (checkpoint / "langsamp.json").is_file()
    assert not (out / "final").exists()
    last = max(int(p.name[5:]) for p in visible)
    result = cli(*args, "--resume", "--max-steps", str(last + 2))
    assert result.returncode == 0, result.stderr
    assert (out / "final" / "model.safetensors").is_file()
    steps = [r["step"] for r in read_log(out / "log.jsonl") if "loss" in r]
    assert steps == list(range(1, last + 3))
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
