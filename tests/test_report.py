"""`langsamp report`: mean (std) over seeds vs numpy, Table-1 layout, files that reload, shard merge, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from langsamp_cli import languages
from langsamp_cli.cli import app, main
from langsamp_cli.errors import LangsampError
from langsamp_cli.report import build_report, parse_formats, render
from langsamp_cli.results import ResultStore

LANGS = {  # lang_script -> (head_tail, script_group, family)
    "eng_Latn": ("head", "Latn", "Indo-European"),
    "rus_Cyrl": ("head", "non-Latn", "Indo-European"),
    "yor_Latn": ("tail", "Latn", "Atlantic-Congo"),
    "chr_Cher": ("tail", "non-Latn", None),
}
GROUPS = {"tail": ["yor_Latn", "chr_Cher"], "head": ["eng_Latn", "rus_Cyrl"], "Latn": ["eng_Latn", "yor_Latn"],
          "non-Latn": ["rus_Cyrl", "chr_Cher"], "all": list(LANGS)}
MODELS = {"/ckpt/glot500-base": 0.0, "/ckpt/langsamp": 0.05}
SEEDS = [1, 2, 3]


def score(model: str, seed: int | None, lang: str) -> float:
    """Deterministic but uneven numbers so every mean and std differs."""
    base = {"eng_Latn": 0.81, "rus_Cyrl": 0.62, "yor_Latn": 0.33, "chr_Cher": 0.1713}[lang]
    return base + MODELS[model] + (0.0 if seed is None else 0.037 * seed * (1 + list(LANGS).index(lang)) % 0.11)


def results_json(task: str, model: str, seed: int | None, metric: str, skipped=()) -> dict:
    languages = [{"lang_script": lang, "lang": lang[:3], "script": lang[4:], "head_tail": ht, "script_group": sg,
                  "family": fam, "n": 10, "metrics": {metric: score(model, seed, lang), "other": 0.5}}
                 for lang, (ht, sg, fam) in LANGS.items()]
    return {"task": task, "model": model, "model_slug": Path(model).name + "-slug", "seed": seed, "metric": metric,
            "metrics": [metric, "other"], "languages": languages,
            "skipped": [{"lang_script": s, "reason": "no test file"} for s in skipped],
            "groups": {g: {} for g in GROUPS}, "provenance": {}}


def run_main(args: list[str]) -> None:
    """``langsamp ARGS`` in-process; success is SystemExit(0) in typer's standalone mode."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    assert exit_.value.code in (0, None)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    """Two models: SIB200 over three seeds, SR-B (no seed) once; one skip."""
    root = tmp_path / "results"
    for model in MODELS:
        name = Path(model).name
        for seed in SEEDS:
            write_json(root / "sib200" / name / f"seed{seed}" / "results.json",
                       results_json("sib200", model, seed, "macro_f1", skipped=["wol_Latn"] if seed == 2 else []))
        write_json(root / "sr-b" / name / "seedna" / "results.json", results_json("sr-b", model, None, "acc@10"))
    return root


def expected(model: str, group: str, seeds: list) -> tuple[float, float]:
    per_seed = [100 * np.mean([score(model, s, lang) for lang in GROUPS[group]]) for s in seeds]
    return float(np.mean(per_seed)), float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else float("nan")


def test_group_mean_std_over_seeds_vs_numpy(results_root: Path):
    report = build_report([results_root])
    groups = report.groups.set_index(["model", "task", "group"])
    for model in MODELS:
        label = Path(model).name
        for group in GROUPS:
            mean, std = expected(model, group, SEEDS)
            row = groups.loc[(label, "sib200", group)]
            assert row["mean"] == pytest.approx(mean) and row["std"] == pytest.approx(std)
            assert row["n_seeds"] == 3 and row["n_languages"] == len(GROUPS[group])
            single = groups.loc[(label, "sr-b", group)]
            assert single["mean"] == pytest.approx(expected(model, group, [None])[0]) and np.isnan(single["std"])
    assert any("skipped wol_Latn (no test file) [seed 2]" in note for note in report.notes)


def test_table1_layout_markdown_and_bold_best(results_root: Path):
    """The paper's Table 1: one row per task, each group's column holds the models side by side."""
    md = render(build_report([results_root]))["table1"]["md"].splitlines()
    groups = ["tail", "head", "Latn", "non-Latn", "all"]
    assert md[0] == "| task | " + " | ".join(f"{g} {m}" for g in groups for m in ("glot500-base", "langsamp")) + " |"
    assert md[1] == "| --- | " + " | ".join(["---:"] * 10) + " |"
    rows = {line.split(" | ")[0].strip("| "): [c.strip() for c in line.strip("|").split(" | ")] for line in md[2:]}
    assert list(rows) == ["SR-B", "SIB200"]  # the paper's task order
    mean, std = expected("/ckpt/langsamp", "tail", SEEDS)
    base_mean, base_std = expected("/ckpt/glot500-base", "tail", SEEDS)
    assert rows["SIB200"][1] == f"{base_mean:.1f} ({base_std:.1f})"
    assert rows["SIB200"][2] == f"**{mean:.1f} ({std:.1f})**"  # higher everywhere -> bold
    sr_b_all = expected("/ckpt/glot500-base", "all", [None])[0]
    assert rows["SR-B"][9] == f"{sr_b_all:.1f}"  # one seed: no std, not bold
    head_mean, head_std = expected("/ckpt/langsamp", "head", SEEDS)
    assert rows["SIB200"][4] == f"**{head_mean:.1f} ({head_std:.1f})**"


def test_table1_single_model_has_plain_group_columns(tmp_path: Path):
    write_json(tmp_path / "r" / "results.json", results_json("sr-t", "/ckpt/langsamp", None, "acc@10"))
    md = render(build_report([tmp_path / "r"]))["table1"]["md"].splitlines()
    assert md[0] == "| task | tail | head | Latn | non-Latn | all |"
    assert md[2].startswith("| SR-T | ") and "**" not in md[2]


def test_files_written_and_reloadable(results_root: Path, tmp_path: Path):
    out = tmp_path / "report"
    run_main(["report", results_root, "--output-dir", out])
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{t}.{f}" for t in ("table1", "families", "languages") for f in ("md", "csv", "tex"))
    table1 = pd.read_csv(out / "table1.csv")
    row = table1[(table1.model == "glot500-base") & (table1.task == "sib200") & (table1.group == "non-Latn")]
    mean, std = expected("/ckpt/glot500-base", "non-Latn", SEEDS)
    assert row["mean"].item() == pytest.approx(mean) and row["std"].item() == pytest.approx(std)
    assert list(table1[table1.model == "langsamp"].group[:5]) == ["tail", "head", "Latn", "non-Latn", "all"]
    langs = pd.read_csv(out / "languages.csv")
    chr_ = langs[(langs.model == "langsamp") & (langs.task == "sib200") & (langs.lang_script == "chr_Cher")]
    per_seed = [100 * score("/ckpt/langsamp", s, "chr_Cher") for s in SEEDS]
    assert chr_["mean"].item() == pytest.approx(np.mean(per_seed))
    assert chr_["std"].item() == pytest.approx(np.std(per_seed, ddof=1))
    families = pd.read_csv(out / "families.csv")
    assert set(families.family) == {"Indo-European", "Atlantic-Congo", "unknown"}
    tex = (out / "table1.tex").read_text()
    assert tex.startswith("\\begin{tabular}{lrrrrrrrrrr}") and "\\multicolumn{2}{c}{non-Latn}" in tex
    assert "task & glot500-base & langsamp & glot500-base" in tex and "\nSIB200 & " in tex
    assert tex.rstrip().endswith("\\end{tabular}") and len(re.findall(r"\\\\$", tex, re.M)) == 4
    assert "chr\\_Cher" in (out / "languages.tex").read_text()
    md_rows = (out / "languages.md").read_text().splitlines()
    assert len(md_rows) == 2 + 2 * len(LANGS)  # header, rule, 2 tasks x 4 languages


def test_single_format_and_metric_choice(results_root: Path, tmp_path: Path):
    out = tmp_path / "only-md"
    run_main(["report", results_root, "--output-dir", out, "--format", "md", "--metric", "other"])
    assert sorted(p.suffix for p in out.iterdir()) == [".md"] * 3
    assert "| SR-B | **50.0** | **50.0** | **50.0** |" in (out / "table1.md").read_text()  # ties: both bold
    with pytest.raises(LangsampError, match="--format pdf: use a comma list of md, csv, tex"):
        parse_formats("pdf")


def test_cli_runner_prints_tables(results_root: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["report", str(results_root), "--output-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "SIB200: macro_f1 x100, mean (std) over 3 seed(s)" in result.output
    mean, std = expected("/ckpt/glot500-base", "head", SEEDS)
    assert f"{mean:.1f} ({std:.1f})" in result.output


def test_default_output_dir_is_inside_first_dir(results_root: Path):
    run_main(["report", results_root, "--format", "csv"])
    assert (results_root / "report" / "table1.csv").is_file()


def test_empty_input_is_one_line_error(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(tmp_path / "empty")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no results.json under") and "\n" not in err
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path / "missing")])
    assert "no such file or folder" in capsys.readouterr().err


def test_same_run_twice_is_an_error(results_root: Path, tmp_path: Path):
    copy = tmp_path / "copy" / "results.json"
    write_json(copy, results_json("sr-b", "/ckpt/langsamp", None, "acc@10"))
    with pytest.raises(LangsampError, match="both hold sr-b seed na of /ckpt/langsamp; pass only one"):
        build_report([results_root, copy])


@pytest.fixture
def fake_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(languages, "groups_for",
                        lambda code: dict(zip(("head_tail", "script_group", "family"), LANGS[code])))
    monkeypatch.setattr(languages, "GROUP_ORDER", list(GROUPS))


def test_unmerged_shards_are_merged_first(tmp_path: Path, fake_groups, capsys):
    root = tmp_path / "results"
    for shard, langs in enumerate((["chr_Cher", "rus_Cyrl"], ["eng_Latn", "yor_Latn"])):
        store = ResultStore(root, "pos", "/ckpt/langsamp", 1, {"shard": shard}, "f1")
        for lang in langs:
            store.write(lang, n=5, metrics={"f1": score("/ckpt/langsamp", 1, lang)})
    run_main(["report", root, "--output-dir", tmp_path / "r"])
    assert "merged unit files into" in capsys.readouterr().err
    assert (store.run_dir / "results.json").is_file()
    table1 = pd.read_csv(tmp_path / "r" / "table1.csv")
    all_row = table1[table1.group == "all"]
    assert all_row["mean"].item() == pytest.approx(expected("/ckpt/langsamp", "all", [1])[0])
    assert all_row["n_languages"].item() == 4


def test_seeds_with_different_languages_are_noted(results_root: Path):
    path = results_root / "sib200" / "langsamp" / "seed3" / "results.json"
    results = json.loads(path.read_text())
    results["languages"] = results["languages"][:3]
    write_json(path, results)
    report = build_report([results_root])
    assert any(note.startswith("sib200 langsamp: seeds cover different languages (seed 1: 4, seed 2: 4, seed 3: 3)")
               for note in report.notes)
    tail = report.groups.set_index(["model", "task", "group"]).loc[("langsamp", "sib200", "tail")]
    per_seed = [100 * np.mean([score("/ckpt/langsamp", s, lang) for lang in langs])
                for s, langs in ((1, GROUPS["tail"]), (2, GROUPS["tail"]), (3, ["yor_Latn"]))]
    assert tail["mean"] == pytest.approx(np.mean(per_seed)) and tail["std"] == pytest.approx(np.std(per_seed, ddof=1))


def test_group_without_languages_shows_a_dash(tmp_path: Path):
    results = results_json("sr-t", "/ckpt/langsamp", None, "acc@10")
    results["languages"] = [r for r in results["languages"] if r["head_tail"] == "head"]
    write_json(tmp_path / "r" / "results.json", results)
    md = render(build_report([tmp_path / "r"]))["table1"]["md"].splitlines()
    assert md[0].startswith("| task | tail | head |")
    assert md[2].startswith("| SR-T | - | ")


def test_models_sharing_a_folder_name_are_told_apart(tmp_path: Path):
    """Two checkpoints both called `final` get their parent folder in the label, not a hash."""
    for name, model in (("pretrain-demo", "/ckpt/langsamp"), ("pretrain-vanilla", "/ckpt/glot500-base")):
        results = results_json("sr-t", model, None, "acc@10")
        results.update(model=f"runs/{name}/final", model_slug=f"{name}--final-1234abcd")
        write_json(tmp_path / "r" / name / "results.json", results)
    report = build_report([tmp_path / "r"])
    assert list(dict.fromkeys(report.groups.model)) == ["pretrain-demo/final", "pretrain-vanilla/final"]
    md = render(report)["table1"]["md"].splitlines()
    assert md[0].startswith("| task | tail pretrain-demo/final | tail pretrain-vanilla/final | head pretrain-demo/final |")


def test_bold_follows_the_printed_value_and_side_tables_keep_order(tmp_path: Path):
    """18.54 vs 18.46 both print 18.5: both bold. Families sort within each task; a language without
    groups still gets its row."""
    for model, shift in (("/ckpt/langsamp", 0.0004), ("/ckpt/glot500-base", -0.0004)):
        for task in ("sr-b", "sr-t"):
            results = results_json(task, model, None, "acc@10")
            for record in results["languages"]:
                record["metrics"]["acc@10"] = 0.185 + shift
            if task == "sr-b":
                results["languages"] = results["languages"][:1]  # Indo-European only: listed first overall
            else:
                results["languages"][3].update(head_tail=None, script_group=None)
            write_json(tmp_path / "r" / task / Path(model).name / "results.json", results)
    tables = render(build_report([tmp_path / "r"]))
    assert "| SR-B | - | - | **18.5** | **18.5** |" in tables["table1"]["md"]
    families = [line.split(" | ")[:2] for line in tables["families"]["md"].splitlines()[2:]]
    assert families == [["| sr-b", "Indo-European"]] + [["| sr-t", f] for f in ("Atlantic-Congo", "Indo-European",
                                                                                 "unknown")]
    assert "| sr-t | chr_Cher | - | - | 18.5 | 18.5 |" in tables["languages"]["md"]
