"""`langsamp experiment`: a minimal two-variant study on generated data, its report, resume and failures."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from langsamp_cli.errors import LangsampError
from langsamp_cli.experiment import (
    ExperimentState,
    _launcher_processes,
    flags_to_argv,
    load_experiment_config,
    plan_stages,
    run_experiment,
)

ALPHABETS = {
    "eng_Latn": "abcdefghijklmnopqrstuvwxyz",
    "rus_Cyrl": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "ell_Grek": "αβγδεζηθικλμνξοπρστυφχψω",
}
TARGETS = ["rus_Cyrl", "ell_Grek"]


def sentences(alphabet: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 7))) for _ in range(150)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))) for _ in range(n)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_data(root: Path) -> dict[str, Path]:
    """Glot500-c style corpus, official-layout SR-T pairs and line-aligned parallel files."""
    for i, (lang, alphabet) in enumerate(ALPHABETS.items()):
        write_lines(root / "corpus" / f"{lang}.txt", sentences(alphabet, 300, seed=i))
        write_lines(root / "parallel" / f"{lang}.txt", sentences(alphabet, 30, seed=100 + i))
    for i, lang in enumerate(TARGETS):
        write_lines(root / "tatoeba" / f"tatoeba.{lang}-eng_Latn.{lang}", sentences(ALPHABETS[lang], 24, 200 + i))
        write_lines(root / "tatoeba" / f"tatoeba.{lang}-eng_Latn.eng_Latn", sentences(ALPHABETS["eng_Latn"], 24, 300 + i))
    return {"corpus": root / "corpus", "parallel": root / "parallel", "tatoeba": root / "tatoeba"}


def experiment_yaml(root: Path, data: dict[str, Path], **changes) -> Path:
    config = {
        "name": "mini",
        "description": "A test run.",
        "output_dir": str(root / "exp"),
        "data_root": str(root),
        "variants": ["vanilla", "both"],
        "runner": "inprocess",
        "pretrain": {"preset": "demo", "corpus": str(data["corpus"]), "max_steps": 4, "batch_size": 4,
                     "max_seq_len": 32, "vocab_size": 300, "warmup_steps": 0, "save_every": 2, "log_every": 2},
        "tasks": {"sr-t": {"data_dir": "{data_root}/tatoeba", "pairs": 24, "max_length": 32}},
        "similarity": {"data_dir": "{data_root}/parallel", "languages": list(ALPHABETS), "n": 20, "max_length": 32},
        "plots": {"languages": "all"},
    }
    config.update(changes)
    path = root / "mini.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("experiment")
    data = make_data(root)
    path = experiment_yaml(root, data)
    config = load_experiment_config(path)
    first = run_experiment(config)
    return {"root": root, "data": data, "yaml": path, "config": config, "first": first}


def unit_scores(results: Path, task: str, variant: str, metric: str) -> dict[str, float]:
    """Scores straight from the unit files of one model (independent of results.json and the report)."""
    scores = {}
    for unit_path in results.glob(f"{task}/*/seedna/units/*.json"):
        unit = json.loads(unit_path.read_text(encoding="utf-8"))
        if Path(unit["model"]).name == variant and unit["status"] == "done":
            scores[unit["lang_script"]] = unit["metrics"][metric] * 100
    return scores


def test_every_stage_ran_and_index_shows_tables_and_pictures(finished: dict) -> None:
    out = finished["config"].output_dir
    names = [s.name for s in plan_stages(finished["config"])]
    assert names == ["tokenizer", "pretrain:vanilla", "pretrain:both", "eval:sr-t:vanilla", "eval:sr-t:both",
                     "similarity:both", "plots:both", "report"]
    assert finished["first"].ran == names
    state = json.loads((out / "experiment_state.json").read_text(encoding="utf-8"))
    assert {n: r["status"] for n, r in state["stages"].items()} == {n: "done" for n in names}
    for name in names:
        assert (out / "logs" / (name.replace(":", "_") + ".log")).is_file()
    index = (out / "index.md").read_text(encoding="utf-8")
    assert "| variant | tail (0) | head (2) | Latn (0) | non-Latn (2) | all (2) |" in index
    assert "A test run." in index
    page = (out / "index.html").read_text(encoding="utf-8")
    images = [part.split('"')[0] for part in page.split('<img src="')[1:]]
    assert "similarity/both/similarity_compare.png" in images
    assert "plots/both/language_pca.png" in images and "plots/both/script_pca.png" in images
    assert all((out / image).is_file() for image in images)


def test_in_process_stage_logs_hold_the_library_output(finished: dict) -> None:
    """stdout and the `langsamp` logger of an in-process stage land in its log, under the command line."""
    logs = finished["config"].output_dir / "logs"
    similarity = (logs / "similarity_both.log").read_text(encoding="utf-8").splitlines()
    assert similarity[1].startswith("# ") and " -m langsamp_cli similarity --model " in similarity[1]
    assert any(line.startswith("data: lines in ") for line in similarity)  # logged by the library
    record = json.loads((finished["config"].output_dir / "similarity" / "both" / "similarity.json").read_text())
    summary = next(line for line in similarity if line.startswith("layer 8: mean similarity of 3 language pairs"))
    assert f"{record['pairs_improved']} of 3 pairs improved" in summary
    plots = (logs / "plots_both.log").read_text(encoding="utf-8")
    assert "model: " in plots and "PCA of both" in plots and "language: 3 points" in plots
    assert "pca.json)" in plots


STAGE_SCRIPT = """
import json, sys
from langsamp_cli.experiment import Layout, execute, load_experiment_config, plan_stages
from langsamp_cli.experiment.runner import stage_env

config = load_experiment_config(sys.argv[1], {"output_dir": sys.argv[2]})
layout = Layout(config.output_dir)
codes = {stage.name: execute(stage, layout.logs / stage.log_name, stage_env(config, layout), sys.argv[3])[0]
         for stage in plan_stages(config) if stage.kind in sys.argv[4].split(",")}
cli = sorted(m for m in sys.modules if m == "langsamp_cli.cli" or m.startswith("langsamp_cli.commands"))
print(json.dumps({"codes": codes, "cli": cli}))
"""


def run_stages(finished: dict, copy: Path, runner: str, kinds: str) -> dict:
    """Run some stages of a copy of the finished experiment in a fresh interpreter (its own sys.modules)."""
    shutil.copytree(finished["config"].output_dir, copy, symlinks=True)
    for folder in ("similarity", "plots"):
        shutil.rmtree(copy / folder)
    proc = subprocess.run([sys.executable, "-c", STAGE_SCRIPT, str(finished["yaml"]), str(copy), runner, kinds],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_in_process_stages_never_import_the_cli(finished: dict, tmp_path: Path) -> None:
    copy = tmp_path / "exp"
    ran = run_stages(finished, copy, "inprocess", "eval,similarity,plots")
    assert ran["codes"] == {"eval:sr-t:vanilla": 0, "eval:sr-t:both": 0, "similarity:both": 0, "plots:both": 0}
    assert ran["cli"] == []
    log = (copy / "logs" / "similarity_both.log").read_text(encoding="utf-8")
    assert "layer 8: mean similarity of 3 language pairs" in log  # the library's summary, not the CLI's tables
    original = finished["config"].output_dir
    for path in ("similarity/both/similarity.csv", "plots/both/language_pca.csv", "plots/both/script_pca.csv"):
        assert (copy / path).read_text(encoding="utf-8") == (original / path).read_text(encoding="utf-8")


@pytest.mark.slow  # two `python -m langsamp_cli` processes (12-21 s on 2 busy cores)
def test_subprocess_runner_runs_the_listed_command_lines_with_the_same_outputs(finished: dict,
                                                                               tmp_path: Path) -> None:
    copy = tmp_path / "exp"
    ran = run_stages(finished, copy, "subprocess", "similarity,plots")
    assert ran["codes"] == {"similarity:both": 0, "plots:both": 0}
    original = finished["config"].output_dir
    for path in ("similarity/both/similarity.csv", "similarity/both/improvement_percent.csv",
                 "plots/both/language_pca.csv"):
        assert (copy / path).read_text(encoding="utf-8") == (original / path).read_text(encoding="utf-8")
    log = (copy / "logs" / "similarity_both.log").read_text(encoding="utf-8")
    assert "data: lines in " in log and "language pairs improved over the baseline" in log  # the CLI's output


def test_stage_settings_unknown_to_the_library_are_one_line_errors(tmp_path: Path) -> None:
    from langsamp_cli.analysis.similarity_run import SimilaritySettings
    from langsamp_cli.experiment.config import library_arguments

    assert library_arguments(SimilaritySettings, {"data_dir": "d", "languages": ["a", "b"], "no_cache": True,
                                                  "layers": [4, 8]}, "similarity", given=("model",)) == {
        "data_dir": "d", "languages": ["a", "b"], "no_cache": True, "layers": [4, 8]}
    with pytest.raises(LangsampError, match=r"^similarity: unknown key 'top' for this stage; known keys: batch_size, compare") as caught:
        library_arguments(SimilaritySettings, {"data_dir": "d", "top": 3}, "similarity")
    assert "\n" not in str(caught.value)
    with pytest.raises(LangsampError, match=r"similarity\.data_dir: required"):
        library_arguments(SimilaritySettings, {"n": 3}, "similarity", given=("model",))
    with pytest.raises(LangsampError, match=r"similarity\.model: set by the experiment itself"):
        library_arguments(SimilaritySettings, {"data_dir": "d", "model": "x"}, "similarity", given=("model",))
    with pytest.raises(LangsampError, match=r"^similarity: seed: -1 must be 0 or more; fix the value$"):
        library_arguments(SimilaritySettings, {"data_dir": "d", "seed": -1}, "similarity", given=("model",))


def test_index_html_is_the_markdown_rendered(finished: dict) -> None:
    page = (finished["config"].output_dir / "index.html").read_text(encoding="utf-8")
    assert "<p>A test run.</p>" in page
    assert '<a href="report/languages.md">languages.md</a>' in page  # a Markdown link in a section's text
    assert "<td class=num><strong>" in page  # best per column: **bold** in a table cell
    assert "**" not in page and "](" not in page  # no Markdown left unrendered


def test_report_numbers_match_the_unit_results(finished: dict) -> None:
    from langsamp_cli.languages import groups_for

    out = finished["config"].output_dir
    table = pd.read_csv(out / "report" / "table1.csv")
    index = (out / "index.md").read_text(encoding="utf-8")
    for variant in ("vanilla", "both"):
        scores = unit_scores(out / "results", "sr-t", variant, "acc@10")
        assert sorted(scores) == sorted(TARGETS)
        expected = {"all": sum(scores.values()) / len(scores)}
        for group in ("head", "non-Latn"):
            members = [v for lang, v in scores.items() if group in groups_for(lang).values()]
            expected[group] = sum(members) / len(members)
        rows = table[(table.model == variant) & (table.task == "sr-t")].set_index("group")["mean"]
        for group, value in expected.items():
            assert rows[group] == pytest.approx(value, abs=1e-9)
        line = next(ln for ln in index.splitlines() if ln.startswith(f"| {variant} |"))
        assert f"{expected['all']:.1f}" in line


def test_rerun_skips_every_stage(finished: dict) -> None:
    out = finished["config"].output_dir
    before = (out / "index.md").stat().st_mtime_ns
    again = run_experiment(load_experiment_config(finished["yaml"]))
    assert again.ran == []
    assert again.skipped == finished["first"].ran
    assert (out / "index.md").stat().st_mtime_ns == before


def test_failed_stage_names_stage_and_log_and_rerun_continues(finished: dict, tmp_path: Path) -> None:
    copy = tmp_path / "exp"
    shutil.copytree(finished["config"].output_dir, copy, symlinks=True)
    empty = tmp_path / "no-pairs"
    empty.mkdir()
    path = experiment_yaml(finished["root"], finished["data"], output_dir=str(copy),
                           tasks={"sr-t": {"data_dir": str(empty), "pairs": 24, "max_length": 32}})
    config = load_experiment_config(path)
    with pytest.raises(LangsampError) as caught:
        run_experiment(config)
    message = str(caught.value)
    assert "stage eval:sr-t:vanilla failed" in message and str(copy / "logs" / "eval_sr-t_vanilla.log") in message
    assert "\n" not in message
    state = ExperimentState(copy / "experiment_state.json", config)
    assert state.stage("eval:sr-t:vanilla")["status"] == "failed"
    assert state.stage("pretrain:both")["status"] == "done"  # finished pretraining untouched


def test_variants_start_from_identical_backbone() -> None:
    """The guarantee the ablation rests on: seed -> same backbone weights whatever the variant."""
    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.model_setup import prepare_model
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    tokenizer = train_unigram_tokenizer(sentences(ALPHABETS["eng_Latn"], 200, 1), 200)
    lang2id, script2id = {"eng": 0, "rus": 1}, {"Cyrl": 0, "Latn": 1}

    def backbone(variant_flags: dict, seed: int) -> dict[str, torch.Tensor]:
        config = build_config("demo", None, {"seed": seed, "max_seq_len": 32, **variant_flags})
        return prepare_model(config, tokenizer, lang2id, script2id, None).mlm.state_dict()

    vanilla = backbone({"lang_emb": False, "script_emb": False}, seed=5)
    both = backbone({"lang_emb": True, "script_emb": True}, seed=5)
    other_seed = backbone({"lang_emb": False, "script_emb": False}, seed=6)
    assert vanilla.keys() == both.keys()
    assert all(torch.equal(vanilla[k], both[k]) for k in vanilla)
    assert not all(torch.equal(vanilla[k], other_seed[k]) for k in vanilla)


def test_pretraining_settings_are_resolved_once_and_passed_to_each_variant_in_process(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """The pretrain section becomes one PretrainConfig when the experiment loads; each variant's in-process stage
    trains on it with its own run folder and tables (no settings file written and read back). Without a runner
    the stages run in process."""
    from langsamp_cli.pretrain import trainer
    from langsamp_cli.pretrain.config import build_config

    data = make_data(tmp_path)
    raw = yaml.safe_load(experiment_yaml(tmp_path, data).read_text(encoding="utf-8"))
    del raw["runner"]
    path = tmp_path / "no-runner.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_experiment_config(path)
    assert config.runner == "inprocess"
    section = {key: value for key, value in raw["pretrain"].items() if key != "preset"}
    assert config.pretrain_config == build_config("demo", None, section)
    trained = []
    monkeypatch.setattr(trainer, "pretrain", lambda settings, **_: trained.append(settings) or trainer.PretrainResult(
        Path(settings.output_dir), None, 0, 0, 0.0, None))
    for stage in plan_stages(config):
        if stage.kind == "pretrain":
            stage.library()
    assert not (config.output_dir / "configs" / "pretrain.yaml").exists()
    shared_tokenizer = str(config.output_dir / "tokenizer")
    assert [(s.output_dir, s.lang_emb, s.script_emb, s.tokenizer) for s in trained] == [
        (str(config.output_dir / "pretrain" / "vanilla"), False, False, shared_tokenizer),
        (str(config.output_dir / "pretrain" / "both"), True, True, shared_tokenizer)]
    assert all(dataclasses.replace(s, output_dir="x", lang_emb=True, script_emb=True, tokenizer=None)
               == dataclasses.replace(config.pretrain_config, output_dir="x", lang_emb=True, script_emb=True)
               for s in trained)


def test_config_errors_are_one_line_and_name_the_key(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    cases = [
        ({"variants": ["vanilla", "bilingual"]}, "variants bilingual"),
        ({"tasks": {"sr-t": {"data_dir": "x", "top_kk": 3}}},
         "tasks.sr-t: unknown key 'top_kk' for sr-t; did you mean 'top_k'"),
        ({"tasks": {"sr-t": {"pairs": "many"}}}, "tasks.sr-t: pairs: 'many' is not a whole number"),
        ({"report": {"metrik": "acc@1"}}, "report: unknown key 'metrik' of the report section; did you mean 'metric'"),
        ({"runnr": "inprocess"}, "unknown key 'runnr' in an experiment; did you mean 'runner'"),
        ({"tasks": {"sr-t": {"model": "x"}}}, "tasks.sr-t.model: set by the experiment"),
        ({"tasks": {"xnli": {}}}, "tasks xnli unknown"),
        ({"pretrain": {"preset": "demo", "max_stepz": 3}}, "pretrain: unknown key 'max_stepz' for pretraining; "
                                                           "did you mean 'max_steps'"),
        ({"pretrain": {"preset": "demo", "lr": "fast"}}, "pretrain: lr: 'fast' is not a number"),
    ]
    for change, expected in cases:
        with pytest.raises(LangsampError, match=expected) as caught:
            load_experiment_config(experiment_yaml(tmp_path, data, **change))
        assert "\n" not in str(caught.value)


def test_paper_preset_fails_clearly_without_glot500c(tmp_path: Path) -> None:
    config = load_experiment_config("paper", {"output_dir": tmp_path / "paper", "data_root": tmp_path})
    assert config.pretrain["launcher"].startswith("accelerate launch")
    stages = plan_stages(config)
    assert [s.name for s in stages][:4] == ["pretrain:vanilla", "pretrain:lang", "pretrain:script", "pretrain:both"]
    assert stages[0].launcher[:2] == ["accelerate", "launch"]
    assert {s.name.split(":")[1] for s in stages if s.kind == "eval"} == {"sr-b", "sr-t", "taxi1500", "sib200",
                                                                         "ner", "pos"}
    with pytest.raises(LangsampError, match="pretrain.corpus: /path/to/Glot500-c does not exist"):
        run_experiment(config)
    assert not (tmp_path / "paper").exists()


def test_cli_dry_run_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from langsamp_cli.cli import main

    path = experiment_yaml(tmp_path, make_data(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        main(["experiment", str(path), "--dry-run", "--variants", "both", "--max-steps", "7"])
    assert exit_.value.code in (0, None)
    err = capsys.readouterr().err
    assert "pretrain:both" in err and "pretrain:vanilla" not in err
    assert not (tmp_path / "exp").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["experiment", str(path), "--tasks", "sib200"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--tasks sib200: not configured" in err and len(err.splitlines()) == 1


def test_flags_and_launchers() -> None:
    assert flags_to_argv({"languages": ["a", "b"], "pairs": 5, "keep_model": False, "x": None, "y": True}) == [
        "--languages", "a,b", "--pairs", "5", "--no-keep-model", "--y"]
    assert _launcher_processes("accelerate launch --num_processes 4") == 4
    assert _launcher_processes("torchrun --nproc_per_node=8 --nnodes 2") == 16
    assert _launcher_processes(None) == 1


@pytest.mark.slow  # two fine-tunes; tests/test_transfer_run.py covers run_transfer itself by default
def test_transfer_stage_runs_through_the_library_like_the_cli(tmp_path: Path, tiny_model_dir: Path) -> None:
    from helpers import SAMPLE_TEXTS, invoke_cli
    from langsamp_cli.experiment import Layout

    labels = ["entertainment", "geography", "health", "politics", "science/technology", "sports", "travel"]
    for lang, splits in (("eng_Latn", {"train": 21, "dev": 7, "test": 14}), ("hin_Deva", {"test": 14})):
        for split, n in splits.items():
            rows = [f"{i}\t{labels[i % 7]}\t{SAMPLE_TEXTS[lang][i % len(SAMPLE_TEXTS[lang])]} {i}" for i in range(n)]
            write_lines(tmp_path / "sib" / lang / f"{split}.tsv", ["index_id\tcategory\ttext", *rows])
    task = {"data_dir": str(tmp_path / "sib"), "seeds": [2], "epochs": 1, "batch_size": 4, "grad_accum": 1,
            "max_train_samples": 16, "languages": ["eng_Latn", "hin_Deva"]}
    path = experiment_yaml(tmp_path, make_data(tmp_path), variants=["vanilla"], tasks={"sib200": task})
    config = load_experiment_config(path)
    stage = next(s for s in plan_stages(config) if s.name == "eval:sib200:vanilla")
    assert stage.library is not None and stage.argv[:2] == ["eval", "sib200"]
    model = Layout(config.output_dir).model("vanilla")
    model.parent.mkdir(parents=True)
    model.symlink_to(tiny_model_dir, target_is_directory=True)

    stage.library()
    argv = list(stage.argv)
    argv[argv.index("--output-dir") + 1] = str(tmp_path / "cli")
    result = invoke_cli(argv)
    assert result.exit_code == 0, result.output

    def scores(results: Path) -> dict[str, float]:
        units = [json.loads(p.read_text(encoding="utf-8")) for p in results.glob("sib200/*/seed2/units/*.json")]
        return {u["lang_script"]: u["metrics"]["macro_f1"] for u in units}

    assert sorted(scores(config.output_dir / "results")) == ["eng_Latn", "hin_Deva"]
    assert scores(config.output_dir / "results") == scores(tmp_path / "cli")


def test_preflight_checks_the_input_paths_the_settings_declare(tmp_path: Path) -> None:
    from langsamp_cli.experiment.config import missing_paths

    data = make_data(tmp_path)
    path = experiment_yaml(tmp_path, data, tasks={"sr-t": {"data_dir": str(tmp_path / "nowhere"), "pairs": 5}},
                           pretrain={"preset": "demo", "corpus": str(data["corpus"]), "tokenizer": "some/hub-name",
                                     "max_steps": 2})
    config = load_experiment_config(path)
    # a tokenizer may be a hub name (never a missing path); the data folder is an input path
    assert missing_paths(config) == [f"tasks.sr-t.data_dir: {tmp_path / 'nowhere'}"]
