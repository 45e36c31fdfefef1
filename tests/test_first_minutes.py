"""What a newcomer sees first: each score beside its baseline, tables that read well in a log, consistent help,
result folders named the same on every machine, and one clear line for the small mistakes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from helpers import hand_macro_f1, results_of
from langsamp_cli.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE_SR_T = REPO / "langsamp_cli" / "samples" / "sr-t"


def _main(args: list, capsys) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "langsamp_cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**environment, **env})


# ---------------------------------------------------------------------------- baselines beside every score
def test_retrieval_results_keep_chance_and_print_it_beside_each_score(tiny_model_dir: Path, tmp_path: Path,
                                                                      capsys) -> None:
    out = tmp_path / "out"
    code, stdout, err = _main(["eval", "sr-t", "--model", tiny_model_dir, "--data-dir", SAMPLE_SR_T, "--languages",
                               "fra_Latn", "--pairs", "20", "--output-dir", out, "--no-cache"], capsys)
    assert code == 0, err
    record = results_of(out)["languages"][0]
    n = record["n"]
    assert n == 20
    assert record["baselines"] == {"chance": {"acc@1": 1 / n, "acc@5": 5 / n, "acc@10": 10 / n}}
    assert results_of(out)["groups"]["all"]["floor"]["acc@10"] == pytest.approx(10 / n)
    row = next(line for line in stdout.splitlines() if line.startswith("fra_Latn"))
    assert f"{100 * record['metrics']['acc@10']:.1f} ({100 * 10 / n:.1f})" in row
    assert "(x) = baseline: chance" in stdout
    assert not any(ch in stdout for ch in "┏┃│━") and all(line == line.rstrip() for line in stdout.splitlines())
    code, stdout, err = _main(["report", out, "--output-dir", tmp_path / "report"], capsys)
    assert code == 0, err
    assert not any(ch in stdout for ch in "┏┃│━|") and "all" in stdout  # plain lines in a log, too
    assert f"note: sr-t: a model with no signal scores {100 * 10 / n:.1f} acc@10" in stdout


def test_a_layers_run_prints_chance_beside_each_layer(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    code, stdout, err = _main(["eval", "sr-t", "--model", tiny_model_dir, "--data-dir", SAMPLE_SR_T, "--languages",
                               "fra_Latn", "--pairs", "20", "--layers", "0,8", "--output-dir", tmp_path, "--no-cache"],
                              capsys)
    assert code == 0, err
    rows = [line for line in stdout.splitlines() if line.strip().startswith("layer ")]
    assert len(rows) == 2 and all("(chance 50.0)" in row for row in rows)  # acc@10 of 20 candidates: 10/20


def _sib(root: Path) -> Path:
    """Imbalanced labels (geography 3x as often as the others) so majority and uniform guessing differ."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    pattern = ["geography", "geography", "geography", "health", "sports"]
    for lang in ("eng_Latn", "deu_Latn"):
        for split, n in (("train", 20), ("dev", 5), ("test", 15)):
            rows = [f"{i}\t{pattern[i % 5]}\t{words[i % 8]} {words[(i * 3) % 8]} {lang} {i}" for i in range(n)]
            folder = root / lang
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + "\n".join(rows) + "\n",
                                                 encoding="utf-8")
    return root


def test_classification_results_keep_majority_and_uniform_baselines(tiny_model_dir: Path, tmp_path: Path,
                                                                     capsys) -> None:
    data, out = _sib(tmp_path / "sib"), tmp_path / "out"
    code, stdout, err = _main(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", out,
                               "--languages", "deu_Latn", "--seeds", "1", "--epochs", "1", "--batch-size", "4",
                               "--grad-accum", "1"], capsys)
    assert code == 0, err
    record = results_of(out)["languages"][0]
    gold = ["geography", "geography", "geography", "health", "sports"] * 3
    majority = record["baselines"]["majority"]
    assert majority["accuracy"] == pytest.approx(9 / 15)
    assert majority["macro_f1"] == pytest.approx(hand_macro_f1(gold, ["geography"] * 15))
    # uniform guessing over the task's 7 SIB-200 labels: expected TP n_c/7, predictions 15/7 per label
    expected = sum(2 * (c / 7) / (15 / 7 + c) for c in Counter(gold).values()) / 7
    assert record["baselines"]["uniform"] == {"macro_f1": pytest.approx(expected), "accuracy": pytest.approx(1 / 7)}
    floor_f1 = max(majority["macro_f1"], expected)
    row = next(line for line in stdout.splitlines() if line.startswith("deu_Latn"))
    assert f"({100 * floor_f1:.1f})" in row and f"({100 * 9 / 15:.1f})" in row
    assert "the better of the training set's most frequent label for every item and uniform random guessing" in stdout
    assert "(baseline " in err  # the per-language line on stderr too


def test_tagging_floor_is_the_majority_tag(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    def iob2(n: int) -> str:
        blocks = []
        for s in range(n):
            words = ["Anna", "went", "to", "Paris", "today", str(s)]
            tags = ["B-PER", "O", "O", "B-LOC", "O", "O"]
            blocks.append("\n".join(f"{i + 1}\t{w}\t{t}\t-\t-" for i, (w, t) in enumerate(zip(words, tags))))
        return "\n\n".join(blocks) + "\n"

    data = tmp_path / "uner"
    for split, n in (("train", 8), ("dev", 3), ("test", 4)):
        path = data / "UNER_English-EWT" / f"en_ewt-ud-{split}.iob2"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(iob2(n), encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, err = _main(["eval", "ner", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", out,
                               "--seeds", "1", "--epochs", "1", "--batch-size", "4", "--grad-accum", "1"], capsys)
    assert code == 0, err
    record = results_of(out)["languages"][0]
    assert record["baselines"]["majority"]["f1"] == 0.0  # every word O: no entity found
    assert record["baselines"]["majority"]["accuracy"] == pytest.approx(4 / 6)


# ---------------------------------------------------------------------------- tables in a log file
def test_tables_are_plain_lines_without_a_terminal_and_boxed_on_one() -> None:
    from langsamp_cli.progress import print_table

    table = Table(title="scores")
    table.add_column("language")
    table.add_column("acc@10", justify="right")
    table.add_row("fra_Latn", "12.0 (2.0)")
    table.add_row("[bold]all[/]", "9.5")
    plain = io.StringIO()
    print_table(table, Console(file=plain, width=4096))
    assert plain.getvalue().splitlines() == ["scores", "language      acc@10", "fra_Latn  12.0 (2.0)",
                                             "all              9.5"]
    boxed = io.StringIO()
    print_table(table, Console(file=boxed, force_terminal=True, width=80))
    assert "┃" in boxed.getvalue() or "│" in boxed.getvalue()


def test_dry_run_in_a_log_has_no_box_and_no_padding() -> None:
    done = _run(["experiment", "cpu-demo", "--dry-run"])
    assert done.returncode == 0, done.stderr[-2000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert not any(ch in done.stdout + done.stderr for ch in "┏┃│━")
    assert all(line == line.rstrip() for line in lines)
    title = next(line for line in lines if line.startswith("experiment cpu-demo"))
    assert len(title) < 100  # the title line is no longer padded to the widest command
    stage = next(line for line in lines if line.startswith("pretrain:both"))
    assert re.search(r"planned +\S+ -m langsamp_cli pretrain --preset demo .*--no-progress$", stage)  # whole, copyable


# ---------------------------------------------------------------------------- help pages
def test_bare_langsamp_and_bare_eval_print_their_help() -> None:
    for args in ([], ["eval"]):
        done = _run(args)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Usage:") and "Commands:" in done.stdout and "Missing command" not in done.stderr


def test_help_pages_use_one_default_style_and_mark_what_is_required() -> None:
    pages = {name: _run([*name.split(), "--help"], COLUMNS="100").stdout
             for name in ("eval sr-t", "eval sib200", "similarity", "donor", "report", "plot-embeddings", "pretrain")}
    for name, page in pages.items():
        assert "[default" not in page and "[required]" not in page, name
    for name in ("eval sr-t", "eval sib200", "similarity"):
        assert re.search(r"--model MODEL +[^\n]*\n?[^\n]*\(required\)", pages[name]), name
    assert "--mixed-precision auto|no|bf16|fp16" in pages["donor"] and "MIXED_PRECISION" not in pages["donor"]
    special = pages["eval sr-t"].split("--exclude-special-tokens")[1].split("\n  --")[0]
    assert "(default:--include-special-tokens)" in re.sub(r"\s+", "", special)  # the flag in effect, not "off"
    assert "(default: --lang-emb)" in pages["pretrain"]
    source = " ".join(pages["eval sr-t"].split("--source-lang LANG")[1].split("\n  --")[0].split())
    assert "fine-tune on" not in source and "query side" in source


# ---------------------------------------------------------------------------- result folders
def test_result_folders_are_named_by_fingerprint_the_same_on_every_path(tiny_model_dir: Path, tmp_path: Path,
                                                                        capsys) -> None:
    from langsamp_cli.model import model_fingerprint
    from langsamp_cli.results import legacy_model_slug

    slugs = []
    for machine in ("here", "there"):
        model = tmp_path / machine / "pretrain-demo" / "final"
        shutil.copytree(tiny_model_dir, model)
        out = tmp_path / machine / "results"
        code, _, err = _main(["eval", "sr-t", "--model", model, "--data-dir", SAMPLE_SR_T, "--languages", "fra_Latn",
                              "--pairs", "10", "--output-dir", out, "--no-cache"], capsys)
        assert code == 0, err
        (folder,) = (out / "sr-t").iterdir()
        slugs.append(folder.name)
        results = results_of(out)
        assert results["model_slug"] == folder.name and results["model_identity"] == str(model.resolve())
        assert results["provenance"]["model_fingerprint"] == model_fingerprint(str(model))
    assert slugs[0] == slugs[1] == f"pretrain-demo--final-{model_fingerprint(str(tiny_model_dir))[:8]}"

    legacy = tmp_path / "here" / "results" / "sr-t" / legacy_model_slug(tmp_path / "here" / "pretrain-demo" / "final")
    (legacy / "seedna").mkdir(parents=True)
    code, _, err = _main(["eval", "sr-t", "--model", tmp_path / "here" / "pretrain-demo" / "final", "--data-dir",
                          SAMPLE_SR_T, "--languages", "fra_Latn", "--pairs", "10", "--output-dir",
                          tmp_path / "here" / "results", "--no-cache"], capsys)
    assert code == 0 and f"note: {legacy} holds older results of this model" in err


# ---------------------------------------------------------------------------- small messages
def test_a_languages_file_with_a_byte_order_mark_is_read(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    listed = tmp_path / "langs.txt"
    listed.write_bytes("\ufefffra_Latn\n".encode("utf-8"))
    code, _, err = _main(["eval", "sr-t", "--model", tiny_model_dir, "--data-dir", SAMPLE_SR_T, "--languages", listed,
                          "--pairs", "5", "--output-dir", tmp_path / "out", "--no-cache"], capsys)
    assert code == 0, err
    assert [r["lang_script"] for r in results_of(tmp_path / "out")["languages"]] == ["fra_Latn"]


def test_a_model_folder_without_config_json_says_so(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "runs" / "pretrain-demo"
    shutil.copytree(tiny_model_dir, run / "final")
    code, _, err = _main(["eval", "sr-t", "--model", run, "--data-dir", SAMPLE_SR_T], capsys)
    assert code == 2
    assert f"--model {run}: no config.json in this folder, so it is not a model; pass {run / 'final'}" in err
    assert "model_type" not in err and len(err.strip().splitlines()) == 1


def test_a_config_with_no_layers_is_one_clear_line(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    model = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "num_hidden_layers": -1}))
    code, _, err = _main(["eval", "sr-t", "--model", model, "--data-dir", SAMPLE_SR_T, "--no-cache",
                          "--output-dir", tmp_path / "out"], capsys)
    assert code == 2
    assert "num_hidden_layers: -1; an encoder needs at least one layer" in err and "pick 0..-1" not in err


def test_vocab_size_too_small_is_an_error_and_too_large_is_a_note(corpus_dir: Path, small_arch: Path, tmp_path: Path,
                                                                  capsys) -> None:
    code, _, err = _main(["pretrain", "--vocab-size", "10", "--output-dir", tmp_path / "small"], capsys)
    assert code == 2 and "--vocab-size 10: use at least 100" in err
    code, _, err = _main(["pretrain", "--corpus", corpus_dir, "--model", small_arch, "--from-scratch", "--vocab-size",
                          "1000000", "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1", "--max-seq-len",
                          "32", "--save-every", "1", "--no-progress", "--output-dir", tmp_path / "big"], capsys)
    assert code == 0, err
    from transformers import AutoTokenizer

    pieces = len(AutoTokenizer.from_pretrained(str(tmp_path / "big" / "tokenizer")))
    assert f"note: --vocab-size 1,000,000: this corpus supports only {pieces:,} pieces" in err


def test_donor_candidates_errors_name_the_candidates_flag(capsys) -> None:
    code, _, err = _main(["donor", "--target", "yue_Hani", "--method", "uriel", "--candidates", "foo_Bar"], capsys)
    assert code == 2 and err.startswith("error: --candidates: 'foo_Bar'") and "--languages" not in err


# ---------------------------------------------------------------------------- threads and the first ETA
def test_thread_default_leaves_busy_cores_to_others(monkeypatch) -> None:
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.threads import cpu_threads

    monkeypatch.delenv("LANGSAMP_THREADS", raising=False)
    assert cpu_threads(torch_default=2, cores=2, busy=0) == 2
    assert cpu_threads(torch_default=2, cores=2, busy=1) == 1
    assert cpu_threads(torch_default=2, cores=2, busy=5) == 1
    assert cpu_threads(torch_default=8, cores=16, busy=2) == 8
    monkeypatch.setenv("LANGSAMP_THREADS", "3")
    assert cpu_threads(torch_default=2, cores=2, busy=1) == 3
    monkeypatch.setenv("LANGSAMP_THREADS", "many")
    with pytest.raises(LangsampError, match="LANGSAMP_THREADS='many': use a whole number"):
        cpu_threads(torch_default=2)


def test_the_first_progress_line_predicts_nothing_from_the_slow_first_step() -> None:
    from langsamp_cli.progress import PlainProgress

    now = [0.0]
    buffer = io.StringIO()
    progress = PlainProgress(Console(file=buffer, width=200), interval_s=0.0, clock=lambda: now[0])
    task = progress.add_task("pretraining", total=400)
    now[0] = 60.0  # loading, tokenizer, the first step: a minute
    progress.update(task, completed=1)
    now[0] = 61.0
    progress.update(task, completed=2)  # then one step per second
    first, second = buffer.getvalue().splitlines()
    assert "eta" not in first
    assert second.endswith("eta 0:06:38")  # 398 steps at 1 s, not 398 x 30 s


def test_every_command_runs_with_the_thread_policy_unless_the_user_chose() -> None:
    code = ("from langsamp_cli.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "import torch\nprint(torch.get_num_threads())")
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LANGSAMP_THREADS")}

    def threads(**env: str) -> str:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                              env={**environment, **env})
        assert done.returncode == 0, done.stderr
        return done.stdout.split()[-1]

    assert threads(LANGSAMP_THREADS="1") == "1"
    assert threads(LANGSAMP_THREADS="1", OMP_NUM_THREADS="2") == "2"  # the user's own setting wins
