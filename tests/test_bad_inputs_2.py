"""Failures of the machine or of a file through the real CLI (issue 25): each is exit code 2, one line, no
traceback and nothing left behind; --overwrite and --export never delete a file langsamp did not write; a run
folder in use is refused; a full disk keeps the previous checkpoint and results."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from langsamp_cli.cli import main
from helpers import ENGLISH_WORDS, OTHER_WORDS, sentences, write_lines

STATUS_LINE = re.compile(r"cpu: \d+ torch thread")  # what a started pretrain says first; not part of an error
Row = Callable[[Path, Path], tuple[list[str], str]]  # (inputs folder, tiny model) -> (argv, expected text)
BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(8))


def _file(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return path


def _tatoeba(inputs: Path, pairs: int = 12) -> Path:
    data = inputs / "tatoeba"
    data.mkdir(parents=True, exist_ok=True)
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.deu_Latn", sentences(OTHER_WORDS["deu_Latn"], pairs, seed=1))
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.eng_Latn", sentences(ENGLISH_WORDS, pairs, seed=2))
    return data


def _sr_t(inputs: Path, model: Path, *extra: str) -> list[str]:
    return ["eval", "sr-t", "--model", str(model), "--data-dir", str(_tatoeba(inputs)), *extra]


def _corpus(inputs: Path) -> Path:
    return _file(inputs / "corpus" / "eng_Latn.txt", "".join(f"an english line {i}\n" for i in range(50))).parent


def _pretrain(inputs: Path, *extra: str) -> list[str]:
    return ["pretrain", "--preset", "demo", "--corpus", str(_corpus(inputs)), "--max-steps", "1", *extra]


def _model_copy(inputs: Path, model: Path, name: str) -> Path:
    return Path(shutil.copytree(model, inputs / name))


# ---------------------------------------------------------------------------- output folders
def output_dir_is_a_file(inputs: Path, model: Path):
    target = _file(inputs / "taken", "a file of mine\n")
    return _sr_t(inputs, model, "--output-dir", str(target)), "taken: is a file, not a folder"


def output_dir_under_a_file(inputs: Path, model: Path):
    target = _file(inputs / "taken", "a file of mine\n") / "runs"
    return _pretrain(inputs, "--output-dir", str(target)), "taken is a file, so no folder can be made under it"


def output_dir_dev_null(inputs: Path, model: Path):
    return ["plot-embeddings", "--model", str(model), "--output-dir", "/dev/null"], "/dev/null: is a file"


def output_dir_in_proc(inputs: Path, model: Path):
    return _sr_t(inputs, model, "--output-dir", "/proc/langsamp-results"), "cannot write in /proc"


def output_dir_symlink_loop(inputs: Path, model: Path):
    (inputs / "loop").symlink_to(inputs / "loop")
    return _sr_t(inputs, model, "--output-dir", str(inputs / "loop" / "out")), "is a symbolic link loop"


def output_dir_name_too_long(inputs: Path, model: Path):
    return _pretrain(inputs, "--output-dir", str(inputs / ("a" * 300))), "300 bytes, longer than the 255"


def report_output_dir_is_a_file(inputs: Path, model: Path):
    target = _file(inputs / "report.md", "mine\n")
    return ["report", str(inputs), "--output-dir", str(target)], "report.md: is a file, not a folder"


# ---------------------------------------------------------------------------- model files
def truncated_safetensors(inputs: Path, model: Path):
    copy = _model_copy(inputs, model, "truncated")
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return _sr_t(inputs, copy), "truncated/model.safetensors: not a readable safetensors file"


def random_safetensors(inputs: Path, model: Path):
    copy = _model_copy(inputs, model, "random")
    (copy / "model.safetensors").write_bytes(os.urandom(4096))
    return _sr_t(inputs, copy), "random/model.safetensors: not a readable safetensors file"


def pickled_bin(inputs: Path, model: Path):
    import torch

    copy = _model_copy(inputs, model, "pickled")
    (copy / "model.safetensors").unlink()
    torch.save({"weights": Path("not a tensor")}, copy / "pytorch_model.bin")
    return _sr_t(inputs, copy), "pickled/pytorch_model.bin: holds objects other than tensors"


def nan_weights(inputs: Path, model: Path):
    from safetensors.torch import load_file, save_file

    copy = _model_copy(inputs, model, "nan")
    weights = load_file(copy / "model.safetensors")
    name = next(k for k, v in weights.items() if "layer.2." in k and v.ndim == 2)
    weights[name][0, 0] = float("nan")
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    return _sr_t(inputs, copy), "holds NaN or infinite values"


def model_without_tokenizer(inputs: Path, model: Path):
    copy = _model_copy(inputs, model, "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model", "special_tokens_map.json"):
        (copy / name).unlink(missing_ok=True)
    return _sr_t(inputs, copy), "no tokenizer files in the folder"


def damaged_model_for_continued_pretraining(inputs: Path, model: Path):
    copy = _model_copy(inputs, model, "damaged")
    (copy / "model.safetensors").write_bytes(b"\x00" * 100)
    return _pretrain(inputs, "--model", str(copy), "--continue"), "damaged/model.safetensors: not a readable"


# ---------------------------------------------------------------------------- YAML
def _task_yaml(name: str, content: str | bytes, expected: str) -> Row:
    def row(inputs: Path, model: Path):
        return _sr_t(inputs, model, "--config", str(_file(inputs / "task.yaml", content))), expected
    row.__name__ = f"task_yaml_{name}"
    return row


def _pretrain_yaml(name: str, content: str | bytes, expected: str) -> Row:
    def row(inputs: Path, model: Path):
        return _pretrain(inputs, "--config", str(_file(inputs / "run.yaml", content))), expected
    row.__name__ = f"pretrain_yaml_{name}"
    return row


# ---------------------------------------------------------------------------- numbers and flags
def seed_negative(inputs: Path, model: Path):
    return _pretrain(inputs, "--seed", "-1"), "--seed: -1 must be 0 or more"


def seed_huge(inputs: Path, model: Path):
    return _pretrain(inputs, "--seed", "99999999999999999999"), "must be at most 2,147,483,647"


def config_too_big(inputs: Path, model: Path):
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(vocab_size=10, hidden_size=100_000, num_hidden_layers=10_000, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=66,
                     type_vocab_size=1).save_pretrained(inputs / "big")
    return (_pretrain(inputs, "--model", str(inputs / "big"), "--from-scratch", "--tokenizer", str(model),
                      "--max-seq-len", "32"), "training needs at least")


def resume_missing_folder(inputs: Path, model: Path):
    return _pretrain(inputs, "--resume", "--output-dir", str(inputs / "typo")), "no such run folder"


def source_lang_on_retrieval(inputs: Path, model: Path):
    return _sr_t(inputs, model, "--source-lang", "deu_Latn"), "--source-lang deu_Latn: sr-t always queries with"


def scheduler_unknown(inputs: Path, model: Path):
    good = "John\tB-PER\nlives\tO\nhere\tO\n\nMary\tB-PER\nleft\tO\n"
    for lang in ("eng_Latn", "deu_Latn"):
        for split in ("train", "dev", "test"):
            _file(inputs / "ner" / lang / split, good)
    return (["eval", "ner", "--model", str(model), "--data-dir", str(inputs / "ner"), "--scheduler", "bogus"],
            "--scheduler 'bogus': not a transformers schedule; use one of linear, cosine")


def similarity_one_sentence(inputs: Path, model: Path):
    return (["similarity", "--model", str(model), "--data-dir", str(inputs), "--n", "1"],
            "--n 1: need at least 2 sentences per language")


def report_scale_nan(inputs: Path, model: Path):
    return ["report", str(inputs), "--scale", "nan"], "--scale nan: must be a positive number"


def report_model_card_missing(inputs: Path, model: Path):
    return (["report", str(inputs), "--model-card", str(inputs / "nonexistent")],
            "nonexistent: not a checkpoint folder")


ROWS: list[Row] = [
    output_dir_is_a_file, output_dir_under_a_file, output_dir_dev_null, output_dir_in_proc, output_dir_symlink_loop,
    output_dir_name_too_long, report_output_dir_is_a_file,
    truncated_safetensors, random_safetensors, pickled_bin, nan_weights, model_without_tokenizer,
    damaged_model_for_continued_pretraining,
    _task_yaml("alias_bomb", f"include: sr-t\n{BOMB}", "(an alias bomb?)"),
    _pretrain_yaml("alias_bomb", BOMB, "(an alias bomb?)"),
    _task_yaml("utf16", "include: sr-t\npairs: 5\n".encode("utf-16"), "task.yaml: UTF-16 text, not UTF-8"),
    _task_yaml("binary", bytes(range(256)), "task.yaml: not UTF-8 text (NUL bytes"),
    _task_yaml("latin1", "include: sr-t\n# caf\xe9\n".encode("latin-1"), "task.yaml:2: not UTF-8 text"),
    _task_yaml("duplicate_key", "include: sr-t\npairs: 5\npairs: 10\n", "task.yaml:3: key 'pairs' appears twice"),
    _pretrain_yaml("duplicate_key", "lr: 0.1\nbatch_size: 2\nlr: 0.2\n", "run.yaml:3: key 'lr' appears twice"),
    seed_negative, seed_huge, config_too_big, resume_missing_folder, source_lang_on_retrieval, scheduler_unknown,
    similarity_one_sentence, report_scale_nan, report_model_card_missing,
]


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(args: list[str], capsys) -> tuple[int, list[str], str]:
    """(exit code, non-empty lines of stderr + stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines()
             if line.strip() and not STATUS_LINE.match(line)]
    return code, lines, captured.err


@pytest.mark.parametrize("row", ROWS, ids=[row.__name__ for row in ROWS])
def test_failure_is_one_line_exit_2_and_leaves_nothing(row: Row, tiny_model_dir: Path, tmp_path: Path,
                                                       monkeypatch, capsys) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args, expected = row(inputs, tiny_model_dir)
    if "--output-dir" not in args:
        args = [*args, "--output-dir", str(tmp_path / "runs" / "out")]
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    code, lines, err = run_cli(args, capsys)
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before, "files were left behind"


# ---------------------------------------------------------------------------- the error boundary
def test_interrupt_says_how_to_continue(tmp_path: Path, monkeypatch, capsys) -> None:
    import langsamp_cli.report

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(langsamp_cli.report, "build_report", interrupted)
    code, lines, _ = run_cli(["report", str(tmp_path)], capsys)
    assert code == 130
    assert lines == ["interrupted: finished units and the last checkpoint are kept; rerun to resume"]


@pytest.mark.parametrize("verbose", [False, True])
def test_disk_full_is_one_line_naming_the_path_and_verbose_shows_the_traceback(tmp_path: Path, monkeypatch, capsys,
                                                                               verbose: bool) -> None:
    import langsamp_cli.report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report" / "table1.md"))

    monkeypatch.setattr(langsamp_cli.report, "build_report", full)
    code, lines, err = run_cli([*(["--verbose"] if verbose else []), "report", str(tmp_path)], capsys)
    assert code == 2
    last = lines[-1]
    assert last.startswith(f"error: {tmp_path / 'report' / 'table1.md'}: no space left on the device (ENOSPC)")
    assert "free there" in last and "free some space" in last
    assert ("Traceback" in err) == verbose
    if not verbose:
        assert len(lines) == 1 and "--verbose" in last


def test_a_bug_keeps_its_traceback() -> None:
    from langsamp_cli.failures import describe_failure

    assert describe_failure(ValueError("a bug")) is None
    assert describe_failure(KeyError("x")) is None
    assert "out of memory" in describe_failure(MemoryError())
    assert "not UTF-8" in describe_failure(UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"))


def test_a_language_list_too_long_for_a_file_name_is_a_list_and_long_paths_are_shortened() -> None:
    from langsamp_cli.failures import describe_failure
    from langsamp_cli.languages import parse_language_list
    from langsamp_cli.tasks import requested_languages

    many = ",".join(["deu_Latn", "fra_Latn"] * 5000)  # 90,000 characters: ENAMETOOLONG as a path
    assert parse_language_list(many) == ["deu_Latn", "fra_Latn"]
    assert requested_languages(many)[0] == ["deu_Latn", "fra_Latn"]
    line = describe_failure(OSError(errno.ENAMETOOLONG, "File name too long", many))
    assert len(line) < 400 and "(89,999 characters): file name too long (ENAMETOOLONG)" in line


def test_non_finite_vectors_are_an_error_naming_the_model(tiny_model_dir: Path, monkeypatch) -> None:
    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.errors import LangsampError

    encoder = SentenceEncoder(str(tiny_model_dir), layer=4, use_cache=False)
    real = encoder._encode_batch
    monkeypatch.setattr(encoder, "_encode_batch", lambda ids, mask, layers: real(ids, mask, layers) * float("inf"))
    with pytest.raises(LangsampError, match=rf"--model {tiny_model_dir}: 2 of 2 sentence vectors at layer 4 are "
                                            "NaN or infinite"):
        encoder.encode(["one sentence", "another one"])


def test_a_language_with_one_pair_is_skipped_with_its_reason(tiny_model_dir: Path, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    data = _tatoeba(tmp_path)
    write_lines(data / "tatoeba.fra_Latn-eng_Latn.fra_Latn", ["une seule phrase"])
    write_lines(data / "tatoeba.fra_Latn-eng_Latn.eng_Latn", ["a single sentence"])
    code, lines, _ = run_cli(["eval", "sr-t", "--model", str(tiny_model_dir), "--data-dir", str(data),
                              "--output-dir", str(tmp_path / "out")], capsys)
    assert code == 0, lines
    results = json.loads(next((tmp_path / "out" / "sr-t").rglob("results.json")).read_text())
    assert [r["lang_script"] for r in results["languages"]] == ["deu_Latn"]
    assert results["skipped"][0]["lang_script"] == "fra_Latn"
    assert "only 1 sentence pair" in results["skipped"][0]["reason"]
    assert results["groups"]["all"]["n_languages"] == 1  # not averaged in as 100%


def test_non_finite_scores_are_named_not_averaged_silently(tmp_path: Path, caplog) -> None:
    from langsamp_cli.logs import get_logger
    from langsamp_cli.results import build_results

    units = [{"lang_script": lang, "status": "done", "n": 10, "metrics": {"acc@10": value}}
             for lang, value in (("deu_Latn", 0.5), ("fra_Latn", float("nan")))]
    logger = get_logger()
    logger.propagate = True
    try:
        results = build_results(units, {"task": "sr-t", "model": "m", "metric": "acc@10"})
    finally:
        logger.propagate = False
    assert results["groups"]["all"]["acc@10"] == 0.5
    assert any("fra_Latn acc@10=nan" in r.message and "left out of the means" in r.message for r in caplog.records)


# ---------------------------------------------------------------------------- YAML reader
def test_yaml_reader_notes_an_empty_file_and_keeps_aliases_that_are_small(tmp_path: Path, caplog) -> None:
    from langsamp_cli.io_utils import read_yaml_mapping
    from langsamp_cli.logs import get_logger

    logger = get_logger()
    logger.propagate = True
    try:
        assert read_yaml_mapping(_file(tmp_path / "empty.yaml", "")) == {}
    finally:
        logger.propagate = False
    assert any("empty.yaml is empty; the defaults apply" in r.message for r in caplog.records)
    small = read_yaml_mapping(_file(tmp_path / "ok.yaml", "base: &b {lr: 0.1}\nrun: *b\n<<: {x: 1}\n"))
    assert small == {"base": {"lr": 0.1}, "run": {"lr": 0.1}, "x": 1}


# ---------------------------------------------------------------------------- caches
def test_an_unwritable_cache_is_skipped_with_a_note(tiny_model_dir: Path, tmp_path: Path, monkeypatch,
                                                    capsys) -> None:
    import langsamp_cli.encode

    monkeypatch.setattr(langsamp_cli.encode, "_UNWRITABLE_CACHES", set())
    in_the_way = _file(tmp_path / "cache-is-a-file", "mine\n")
    monkeypatch.setenv("LANGSAMP_CACHE", str(in_the_way))
    code, lines, err = run_cli(_sr_t(tmp_path, tiny_model_dir, "--output-dir", str(tmp_path / "out")), capsys)
    assert code == 0, lines
    assert f"note: the embedding cache {in_the_way} cannot be written" in err
    assert in_the_way.read_text() == "mine\n"
    assert (tmp_path / "out" / "sr-t").is_dir()


# ---------------------------------------------------------------------------- permissions (not as root)
def _as_nobody() -> list[str] | None:
    """A command prefix that runs as user nobody, or None where that is not possible."""
    if os.geteuid() != 0:
        return []  # already not root: permission bits apply
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "true"],
                           capture_output=True)
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if probe.returncode == 0 else None


@pytest.mark.parametrize("command", ["eval", "pretrain"])
def test_a_read_only_output_folder_is_one_line(command: str) -> None:
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip("root ignores permission bits and no setpriv/nobody user to run as")
    base = Path(tempfile.mkdtemp(prefix="langsamp-ro-"))
    try:
        base.chmod(0o755)
        read_only = base / "ro"
        read_only.mkdir()
        read_only.chmod(0o555)
        args = (["eval", "sr-t", "--model", "unused", "--data-dir", "unused"] if command == "eval"
                else ["pretrain", "--preset", "demo", "--max-steps", "1"])
        result = subprocess.run([*prefix, sys.executable, "-m", "langsamp_cli", *args, "--output-dir",
                                 str(read_only / "out")], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "COLUMNS": "300", "HOME": "/nonexistent"})
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        assert result.returncode == 2, lines
        assert lines == [f"error: --output-dir {read_only / 'out'}: cannot write in {read_only} (permission denied "
                         "(EACCES)); pick a folder you can write to"]
        assert list(read_only.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------- run folders
def _run_args(corpus_dir: Path, small_arch: Path, tokenizer: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--corpus", str(corpus_dir), "--model", str(small_arch), "--from-scratch", "--tokenizer",
            str(tokenizer), "--output-dir", str(out), "--max-seq-len", "32", "--batch-size", "2", "--max-steps", "2",
            "--save-every", "1", "--log-every", "1", "--no-progress", *extra]


def test_overwrite_deletes_only_what_the_run_wrote(corpus_dir: Path, small_arch: Path, tiny_model_dir: Path,
                                                   tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, "--mixed-precision", "fp16"),
                             capsys)
    assert code == 0, lines
    import torch

    if not torch.cuda.is_available():  # the precision that ran is recorded, not the one asked for
        assert json.loads((out / "run.json").read_text())["config"]["mixed_precision"] == "no"
        assert json.loads((out / "final" / "trainer_state.json").read_text())["config"]["mixed_precision"] == "no"
    mode = 0o666 & ~_umask()
    for name in ("model.safetensors", "langsamp_embeddings.safetensors", "config.json"):
        assert stat.S_IMODE((out / "final" / name).stat().st_mode) == mode, name
    assert stat.S_IMODE((out / "final").stat().st_mode) == 0o777 & ~_umask()
    _file(out / "notes.md", "my notes\n")
    _file(out / "checkpoints" / "mine.txt", "mine\n")
    code, lines, err = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, "--overwrite"), capsys)
    assert code == 0, lines
    assert "note: --overwrite kept notes.md" in err
    assert (out / "notes.md").read_text() == "my notes\n"
    assert (out / "checkpoints" / "mine.txt").read_text() == "mine\n"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["mine.txt", "step-1", "step-2"]
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)  # overwriting through a symlink works inside its target
    code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, link, "--overwrite"), capsys)
    assert code == 0, lines
    assert link.is_symlink() and (out / "notes.md").read_text() == "my notes\n" and (out / "final").is_dir()


def test_a_folder_langsamp_did_not_mark_is_never_overwritten_or_restarted(corpus_dir: Path, small_arch: Path,
                                                                         tiny_model_dir: Path, tmp_path: Path,
                                                                         capsys) -> None:
    out = tmp_path / "mine"
    _file(out / "checkpoints" / "model.pt", "weights of mine\n")
    _file(out / "log.jsonl", '{"mine": 1}\n')
    before = _snapshot(out)
    for extra in (["--overwrite"], []):
        code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, *extra), capsys)
        assert code == 2 and len(lines) == 1, lines
        assert "not a pretraining run langsamp marked as its own (no run.json" in lines[0]
    assert _snapshot(out) == before
    assert (out / "log.jsonl").read_text() == '{"mine": 1}\n'


def test_a_run_folder_in_use_is_refused_naming_the_process(corpus_dir: Path, small_arch: Path,
                                                           tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    _file(out / "run.json", json.dumps({"config": {}}))  # a run that has not saved its first checkpoint yet
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(out / '.langsamp.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, str(os.getpid()).encode())\n"
        "print('locked', flush=True)\ntime.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for extra in ([], ["--resume"], ["--overwrite"]):
            code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, *extra), capsys)
            assert code == 2, lines
            assert lines == [f"error: {out}: in use by another langsamp pretrain (pid {holder.pid}); wait for it to "
                             "finish (or stop it), or pick another --output-dir"]
        assert sorted(p.name for p in out.iterdir()) == [".langsamp.lock", "run.json"]
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(out / ".langsamp.lock", os.O_RDWR)  # released by the OS with the process
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_disk_full_at_a_checkpoint_keeps_the_previous_one(corpus_dir: Path, small_arch: Path, tiny_model_dir: Path,
                                                          tmp_path: Path, monkeypatch, capsys) -> None:
    import torch

    from langsamp_cli.pretrain.checkpoints import checkpoint_problem

    real_save, calls = torch.save, []

    def save_that_fills_the_disk(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # torch's own words when the disk is full mid-write
            Path(path).write_bytes(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                               "file data/3: file write failed")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_that_fills_the_disk)
    out = tmp_path / "run"
    code, lines, err = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out), capsys)
    assert code == 2 and "Traceback" not in err
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]  # after the run's own output
    assert "writing a checkpoint file failed (is the disk full?)" in lines[-1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-1"]  # no half-written step-2
    assert checkpoint_problem(out / "checkpoints" / "step-1") is None
    monkeypatch.setattr(torch, "save", real_save)
    code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert code == 0, lines
    assert (out / "final" / "model.safetensors").is_file()


def test_a_checkpoint_that_cannot_fit_is_refused_with_the_space_needed(corpus_dir: Path, small_arch: Path,
                                                                        tiny_model_dir: Path, tmp_path: Path,
                                                                        monkeypatch, capsys) -> None:
    import langsamp_cli.failures as failures
    from langsamp_cli.pretrain.checkpoints import checkpoint_problem

    real_free = failures.free_bytes
    out = tmp_path / "run"

    def little_space_after_the_first_checkpoint(path):
        return 5_000 if (out / "checkpoints" / "step-1").is_dir() else real_free(path)

    monkeypatch.setattr(failures, "free_bytes", little_space_after_the_first_checkpoint)
    code, lines, err = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out), capsys)
    step1 = sum(p.stat().st_size for p in (out / "checkpoints" / "step-1").rglob("*") if p.is_file())
    assert code == 2 and "Traceback" not in err
    assert re.search(r"checkpoints: a checkpoint needs about [\d,.]+ KB but only 5 KB are free there; .*--resume",
                     lines[-1]), lines[-1]
    assert f"{step1 / 1024:,.0f} KB" in lines[-1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-1"]
    assert checkpoint_problem(out / "checkpoints" / "step-1") is None
    monkeypatch.setattr(failures, "free_bytes", real_free)
    code, lines, _ = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out, "--resume"), capsys)
    assert code == 0, lines


def test_a_diverged_loss_stops_the_run_naming_the_step(corpus_dir: Path, small_arch: Path, tiny_model_dir: Path,
                                                       tmp_path: Path, monkeypatch, capsys) -> None:
    import langsamp_cli.pretrain.trainer as trainer

    losses = iter([2.5, float("nan")])
    monkeypatch.setattr(trainer, "mean_over_ranks", lambda *args: next(losses))
    out = tmp_path / "run"
    code, lines, err = run_cli(_run_args(corpus_dir, small_arch, tiny_model_dir, out), capsys)
    assert code == 2 and "Traceback" not in err
    assert lines[-1] == (f"error: {out}: the training loss is nan at step 2 (diverged); the checkpoints before it "
                         "are intact: lower --lr or set --max-grad-norm, then --resume or --overwrite")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-1"] and not (out / "final").exists()


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 1 MB tmpfs (root only); skipped where it cannot be mounted."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_keeps_the_previous_results(small_tmpfs: Path, tmp_path: Path, capsys) -> None:
    from langsamp_cli.io_utils import atomic_write_json

    results = small_tmpfs / "results.json"
    atomic_write_json(results, {"score": 1})
    _fill(small_tmpfs)
    with pytest.raises(OSError) as info:
        atomic_write_json(results, {"score": 2, "pad": "x" * 100_000})
    assert info.value.errno == errno.ENOSPC
    assert json.loads(results.read_text()) == {"score": 1}
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler", "results.json"]  # no temp file left
    from langsamp_cli.failures import describe_failure

    assert "no space left on the device (ENOSPC)" in describe_failure(info.value)


def _fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # to the last block
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_report_on_a_full_disk_is_one_line_and_keeps_the_previous_tables(small_tmpfs: Path, tmp_path: Path,
                                                                         capsys) -> None:
    languages = [{"lang_script": lang, "lang": lang[:3], "script": lang[4:], "head_tail": "head",
                  "script_group": "Latn", "family": None, "n": 10, "metrics": {"acc@10": value}}
                 for lang, value in (("deu_Latn", 0.5), ("fra_Latn", 0.7))]
    _file(tmp_path / "results" / "sr-t" / "m" / "seedna" / "results.json", json.dumps(
        {"task": "sr-t", "model": "/m", "model_slug": "m", "seed": None, "metric": "acc@10", "metrics": ["acc@10"],
         "languages": languages, "skipped": [], "groups": {}, "provenance": {}}))
    report = small_tmpfs / "report"
    code, lines, _ = run_cli(["report", str(tmp_path / "results"), "--output-dir", str(report)], capsys)
    assert code == 0, lines
    before = {p.name: p.read_bytes() for p in report.iterdir()}
    _fill(small_tmpfs)
    code, lines, err = run_cli(["report", str(tmp_path / "results"), "--output-dir", str(report), "--scale", "1"],
                               capsys)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, lines
    assert "no space left on the device (ENOSPC)" in lines[0] and "free some space" in lines[0]
    assert {p.name: p.read_bytes() for p in report.iterdir()} == before  # the previous tables, whole


# ---------------------------------------------------------------------------- experiment --export
def test_export_never_deletes_the_users_files(tmp_path: Path) -> None:
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.experiment.runner import export_report

    root = tmp_path / "experiment"
    _file(root / "index.md", "# index\n")
    _file(root / "report" / "table1.md", "| table |\n")
    dest = tmp_path / "docs" / "results"
    _file(dest / "notes.md", "my notes\n")
    exported = export_report(root, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in exported) == ["index.md", "report/table1.md"]
    (root / "report" / "table1.md").unlink()
    _file(root / "report" / "table2.md", "| two |\n")
    export_report(root, dest)
    assert (dest / "notes.md").read_text() == "my notes\n"
    assert not (dest / "report" / "table1.md").exists()  # ours from the earlier export, gone from the report
    assert (dest / "report" / "table2.md").read_text() == "| two |\n"
    a_file = _file(tmp_path / "export.txt", "mine\n")
    with pytest.raises(LangsampError, match="is a file, not a folder"):
        export_report(root, a_file)
    assert a_file.read_text() == "mine\n" and not (tmp_path / ".export.txt.old").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
