"""Pretraining run lifecycle under hostile or unlucky conditions: planted pickles, damaged checkpoints, a moved or
changed corpus, wrongly typed settings, leftovers of killed runs, folders that are not runs."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.checkpoints import MANIFEST_FILE, STATE_FILE, checkpoint_problem, file_sha256
from langsamp_cli.pretrain.run_dir import run_settings
from langsamp_cli.pretrain.trainer import pretrain
from helpers import save_small_xlmr_config, write_sample_corpus

LANGS = ("eng_Latn", "rus_Cyrl", "ell_Grek")


def write_corpus(root: Path, first: int = 10) -> Path:
    """Sentences numbered from ``first`` (two digits: another ``first`` gives the same sizes, other text)."""
    return write_sample_corpus(root, LANGS, first=first)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus")


@pytest.fixture(scope="module")
def small_arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_small_xlmr_config(tmp_path_factory.mktemp("arch"), hidden_size=16, layers=1)


def settings(corpus: Path | str, arch: Path, tokenizer: Path, output_dir: Path | str) -> dict:
    return dict(corpus=str(corpus), model=str(arch), from_scratch=True, tokenizer=str(tokenizer),
                output_dir=str(output_dir), max_seq_len=32, batch_size=2, grad_accum=1, max_steps=6, save_every=2,
                keep_last=3, log_every=1, warmup_steps=1, lr=1e-3, seed=3)


@pytest.fixture
def make_config(corpus_dir: Path, tiny_model_dir: Path, small_arch: Path):
    def make(output_dir: Path, **overrides):
        return build_config("demo", None, {**settings(corpus_dir, small_arch, tiny_model_dir, output_dir),
                                           **overrides})
    return make


def run(config, **kwargs):
    """pretrain() with its console captured; returns (result, console text)."""
    buffer = io.StringIO()
    result = pretrain(config, progress=False, console=Console(file=buffer, width=300), **kwargs)
    return result, buffer.getvalue()


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(output_dir / "final" / "model.safetensors"))


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def straight_weights(corpus_dir: Path, tiny_model_dir: Path, small_arch: Path, tmp_path_factory) -> dict:
    """The final weights of an uninterrupted 6-step run (what every resumed run below must end with)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("straight") / "run"
    run(build_config("demo", None, settings(corpus_dir, small_arch, tiny_model_dir, out)))
    return final_weights(out)


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """`langsamp ...` through the console entry point: (exit code, stdout, stderr)."""
    from langsamp_cli.cli import main

    code = 0
    try:
        main(args)
    except SystemExit as exit_info:
        code = exit_info.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def cli_args(corpus: Path, arch: Path, tokenizer: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(corpus), "--model", str(arch), "--from-scratch", "--tokenizer",
            str(tokenizer), "--output-dir", str(out), "--max-seq-len", "32", "--batch-size", "2", "--grad-accum", "1",
            "--max-steps", "6", "--save-every", "2", "--log-every", "1", "--warmup-steps", "1", "--lr", "1e-3",
            "--seed", "3", "--no-progress", *extra]


# ------------------------------------------------------------------------ 1. no code from trainer_state.pt


class PlantMarker:
    """Unpickling this runs a command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(checkpoint: Path, marker: Path) -> None:
    """A malicious trainer_state.pt, with a manifest updated to match (an attacker can rewrite both)."""
    torch.save({"step": 4, "config": {}, "evil": PlantMarker(marker)}, checkpoint / STATE_FILE)
    manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
    path = checkpoint / STATE_FILE
    manifest["files"][STATE_FILE] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    (checkpoint / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert checkpoint_problem(checkpoint) is None   # so only weights_only=True stands between it and a shell


def test_planted_pickle_never_runs_and_resume_falls_back(make_config, straight_weights, tmp_path, capsys) -> None:
    out, marker = tmp_path / "run", tmp_path / "PWNED"
    run(make_config(out), stop_after_steps=4)
    plant(out / "checkpoints" / "step-4", marker)
    # The saved states load with weights_only=True (tensors and plain containers only).
    state = torch.load(out / "checkpoints" / "step-2" / STATE_FILE, weights_only=True)
    assert isinstance(state["ranks"][0]["rng"]["numpy"]["keys"], torch.Tensor)

    result, text = run(make_config(out), resume=True)
    assert not marker.exists()
    assert "step-4 is damaged" in text and "could run code" in text and "resuming from step-2" in text
    assert result.steps == 6 and same_weights(final_weights(out), straight_weights)


def test_planted_pickle_in_the_only_checkpoint_is_a_one_line_error(make_config, corpus_dir, tiny_model_dir,
                                                                   small_arch, tmp_path, capsys) -> None:
    out, marker = tmp_path / "run", tmp_path / "PWNED"
    run(make_config(out, keep_last=1), stop_after_steps=2)
    plant(out / "checkpoints" / "step-2", marker)
    code, _, err = cli(cli_args(corpus_dir, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert not marker.exists()
    assert_one_line_error(code, err, "could run code", "no intact checkpoint")


# --------------------------------------------------------------------------- 4. damaged newest checkpoint


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated model.safetensors": lambda ckpt: truncate(ckpt / "model.safetensors"),
    "empty trainer_state.pt": lambda ckpt: (ckpt / STATE_FILE).write_bytes(b""),
    "broken config.json": lambda ckpt: (ckpt / "config.json").write_text("{not json"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_to_an_intact_one(damage, make_config, straight_weights,
                                                               tmp_path) -> None:
    out = tmp_path / "run"
    run(make_config(out), stop_after_steps=4)
    DAMAGE[damage](out / "checkpoints" / "step-4")
    result, text = run(make_config(out), resume=True)
    warnings = [line for line in text.splitlines() if "is damaged" in line]
    assert len(warnings) == 1 and "step-4 is damaged" in warnings[0] and "resuming from step-2" in warnings[0]
    assert warnings[0].startswith("warning: ")
    assert result.steps == 6 and same_weights(final_weights(out), straight_weights)
    steps = [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_no_intact_checkpoint_is_a_one_line_error(make_config, corpus_dir, tiny_model_dir, small_arch, tmp_path,
                                                   capsys) -> None:
    out = tmp_path / "run"
    run(make_config(out), stop_after_steps=4)
    truncate(out / "checkpoints" / "step-4" / "model.safetensors")
    (out / "checkpoints" / "step-2" / "config.json").write_text("")
    code, _, err = cli(cli_args(corpus_dir, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert_one_line_error(code, err, "step-4: damaged checkpoint", "model.safetensors has", "no intact checkpoint")


# --------------------------------------------------------------------------------------- 3. the corpus


def test_resume_from_another_directory_uses_the_absolute_corpus_path(tiny_model_dir, small_arch, straight_weights,
                                                                     tmp_path, monkeypatch) -> None:
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    write_corpus(start / "corpus")
    elsewhere.mkdir()
    monkeypatch.chdir(start)
    config = build_config("demo", None, settings("corpus", small_arch, tiny_model_dir, tmp_path / "run"))
    run(config, stop_after_steps=2)
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())
    assert recorded["config"]["corpus"] == str(start / "corpus")
    assert set(recorded["corpus_fingerprint"]["files"]) == {f"{lang}.txt" for lang in LANGS}

    monkeypatch.chdir(elsewhere)
    given = {k: v for k, v in settings("unused", small_arch, tiny_model_dir, tmp_path / "run").items()
             if k != "corpus"}
    result, _ = run(build_config("demo", None, given), resume=True)
    assert result.steps == 6 and same_weights(final_weights(tmp_path / "run"), straight_weights)


def test_resume_accepts_a_moved_corpus_and_refuses_a_different_one(make_config, corpus_dir, tiny_model_dir,
                                                                   small_arch, straight_weights, tmp_path,
                                                                   capsys) -> None:
    out = tmp_path / "run"
    original = write_corpus(tmp_path / "disk1" / "corpus")
    run(make_config(out, corpus=str(original)), stop_after_steps=2)

    changed = write_corpus(tmp_path / "other", first=50)   # same names and sizes, other text
    code, _, err = cli(cli_args(changed, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert_one_line_error(code, err, "not the corpus this run was trained on", "other content")
    fewer = tmp_path / "fewer"
    shutil.copytree(original, fewer)
    (fewer / "ell_Grek.txt").unlink()
    code, _, err = cli(cli_args(fewer, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert code == 2 and ("ell_Grek" in err and "Traceback" not in err)

    moved = tmp_path / "disk2" / "corpus"
    shutil.copytree(original, moved, copy_function=shutil.copy)   # new mtimes, same files
    shutil.rmtree(original)
    result, text = run(make_config(out, corpus=str(moved)), resume=True)
    assert "corpus moved" in text
    assert result.steps == 6 and same_weights(final_weights(out), straight_weights)


# ------------------------------------------------------------------------- 5. wrongly typed settings


@pytest.mark.parametrize("line, fragments", [
    ('batch_size: "two"', ("batch_size", "'two'", "whole number")),
    ("lr: [1, 2]", ("lr", "[1, 2]", "number")),
    ('alpha: "x"', ("alpha", "'x'", "number")),
    ("adam_betas: 0.9", ("adam_betas", "0.9", "two numbers")),
])
def test_wrongly_typed_yaml_setting_is_a_one_line_error(line, fragments, corpus_dir, tmp_path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"# settings\nmax_steps: 3\n{line}\n")
    out = tmp_path / "out"
    code, _, err = cli(["pretrain", "--config", str(config), "--corpus", str(corpus_dir), "--output-dir", str(out)],
                       capsys)
    assert_one_line_error(code, err, f"bad.yaml:3: {fragments[0]}", *fragments[1:])
    assert not out.exists()


def test_yaml_numbers_written_as_text_are_read_as_numbers(tmp_path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("lr: 5e-5\nmax-steps: 1e3\nmixed_precision: no\nadam_betas: [0.9, 0.98]\n")
    built = build_config("demo", config)
    assert (built.lr, built.max_steps, built.mixed_precision, built.adam_betas) == (5e-5, 1000, "no", (0.9, 0.98))
    assert isinstance(built.max_steps, int)


def test_tokenizer_without_ordinary_tokens_is_a_one_line_error(corpus_dir, small_arch, tmp_path, capsys) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(WordLevel({token: i for i, token in enumerate(specials)}, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    only_special = tmp_path / "only_special"
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>", mask_token="<mask>").save_pretrained(only_special)
    out = tmp_path / "out"
    code, _, err = cli(cli_args(corpus_dir, small_arch, only_special, out), capsys)
    assert_one_line_error(code, err, "no ordinary (non-special) tokens")
    assert not out.exists()


# -------------------------------------------------------------------------- 9. leftovers, blocked reruns


def test_resume_cleans_temp_dirs_of_a_killed_run(make_config, tmp_path) -> None:
    out = tmp_path / "run"
    run(make_config(out), stop_after_steps=2)
    leftovers = [out / ".tokenizer.abc123.tmp", out / ".final.xyz789.tmp", out / ".best.q1.tmp"]
    for path in leftovers:
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"half")
    (out / ".run.json.k2.tmp").write_text("{")
    result, _ = run(make_config(out), resume=True)
    assert result.steps == 6
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".langsamp.lock"]  # the run's lock


def test_a_run_that_crashed_before_its_first_checkpoint_can_be_rerun(corpus_dir, tiny_model_dir, tmp_path,
                                                                     capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"config": {"vocab_size": 1}, "world_size": 1}))
    (out / "log.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    (out / ".tokenizer.1.tmp").mkdir()
    args = ["pretrain", "--corpus", str(corpus_dir), "--model", "tiny", "--tokenizer", str(tiny_model_dir),
            "--output-dir", str(out), "--max-seq-len", "16", "--batch-size", "1", "--max-steps", "1",
            "--save-every", "1", "--log-every", "1", "--no-progress"]
    code, stdout, err = cli(args, capsys)
    assert code == 0, err
    assert "stopped before its first checkpoint" in err and "final model:" in stdout
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["config"]["from_scratch"] is True   # `tiny` always trains from scratch
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1]
    assert not (out / ".tokenizer.1.tmp").exists()


def test_failed_validation_leaves_no_output_directory(corpus_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code, _, err = cli(["pretrain", "--corpus", str(tmp_path / "missing"), "--output-dir", str(out)], capsys)
    assert_one_line_error(code, err, str(tmp_path / "missing"))
    assert not out.exists()
    code, _, err = cli(["pretrain", "--corpus", str(corpus_dir), "--model", str(tmp_path / "no_model"),
                        "--output-dir", str(out)], capsys)
    assert code == 2 and not out.exists(), err


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    code, _, err = cli(["pretrain", "--resume", "--output-dir", str(folder)], capsys)
    assert_one_line_error(code, err, "is not a pretraining run", "--resume")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------------------------------ 10. notes


def test_resume_notes_only_settings_that_really_differ(make_config, tmp_path) -> None:
    out = tmp_path / "run"
    run(make_config(out), stop_after_steps=2)
    _, text = run(make_config(out), resume=True)
    assert "adam_betas" not in text and "note:" not in text
    _, text = run(make_config(out, max_steps=8, lr=0.5), resume=True)
    notes = [line for line in text.splitlines() if "note:" in line]
    assert len(notes) == 1 and "lr (checkpoint 0.001, given 0.5)" in notes[0] and "adam_betas" not in notes[0]


def test_run_settings_record_the_truth() -> None:
    assert run_settings(build_config("demo")).from_scratch is True
    assert build_config("demo").from_scratch is False   # what the user wrote stays as it was
    assert os.path.isabs(run_settings(build_config("demo")).corpus)
