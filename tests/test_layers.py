"""Every layer in one pass: `eval sr-t --layers`, `similarity --layers`, `report --by-layer`.

The multi-layer numbers must equal the single-layer ones exactly (same batches, same pooling), the
task's own layer (8) must land where a plain run puts it with the same identity, and the by-layer
report must hold the means of the unit files.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.encode import SentenceEncoder, parse_layers
from langsamp_cli.errors import LangsampError
from helpers import ENGLISH_WORDS, OTHER_WORDS, invoke_cli, read_matrix, run_cli, sentences, sib_fixture, write_lines

LANGS = ["deu_Latn", "fra_Latn", "rus_Cyrl"]


@pytest.fixture()
def pairs_dir(tmp_path: Path) -> Path:
    data = tmp_path / "tatoeba"
    data.mkdir()
    english = sentences(ENGLISH_WORDS, 20, seed=11)
    for i, lang in enumerate(LANGS):
        write_lines(data / f"tatoeba.{lang}-eng_Latn.{lang}", sentences(OTHER_WORDS[lang], 20, seed=12 + i))
        write_lines(data / f"tatoeba.{lang}-eng_Latn.eng_Latn", english)
    return data


def units(run_root: Path) -> dict[str, dict]:
    """lang_script -> unit JSON of the single model/seed folder under ``run_root`` (= out/<task>)."""
    (units_dir,) = list(run_root.glob("*/seedna/units"))
    return {p.stem: json.loads(p.read_text()) for p in units_dir.glob("*.json")}


def metrics(run_root: Path) -> dict[str, dict]:
    return {lang: unit["metrics"] for lang, unit in units(run_root).items()}


def eval_args(model: Path, data: Path, out: Path) -> list[str]:
    return ["eval", "sr-t", "--model", str(model), "--data-dir", str(data), "--output-dir", str(out),
            "--batch-size", "8", "--max-length", "64"]


# ---------------------------------------------------------------------------- the encoder
def test_encode_layers_equals_single_layer_encoders_and_shares_their_cache(tiny_model_dir, tmp_path):
    texts = sentences(ENGLISH_WORDS, 25, seed=1) + sentences(OTHER_WORDS["rus_Cyrl"], 10, seed=2)
    cache = tmp_path / "cache"
    multi = SentenceEncoder(str(tiny_model_dir), layer=6, batch_size=4, cache_dir=cache)
    got = multi.encode_layers(texts, [0, 3, 6])
    assert sorted(got) == [0, 3, 6] and multi.sentences_encoded == len(set(texts))  # one pass for 3 layers
    for k in (0, 3, 6):
        plain = SentenceEncoder(str(tiny_model_dir), layer=k, batch_size=4, use_cache=False).encode(texts)
        assert np.array_equal(got[k], plain)
        cached = SentenceEncoder(str(tiny_model_dir), layer=k, batch_size=4, cache_dir=cache)
        assert np.array_equal(cached.encode(texts), plain) and cached.sentences_encoded == 0  # same cache entry
    with pytest.raises(LangsampError, match="deeper than this encoder's layer 6"):
        multi.encode_layers(texts, [8])


def test_parse_layers():
    assert parse_layers("all", 4) == [0, 1, 2, 3, 4]
    assert parse_layers("8, 4,4,6", 12) == [4, 6, 8]
    for bad in ("", "4,x", "-1", "13"):
        with pytest.raises(LangsampError, match="--layers"):
            parse_layers(bad, 12)


# ---------------------------------------------------------------------------- eval sr-t --layers
def test_layers_all_layer8_is_the_plain_run(tiny_model_dir, pairs_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    plain, multi = tmp_path / "plain", tmp_path / "multi"
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, plain) + ["--no-cache"]) == 0
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, multi) + ["--layers", "all", "--no-cache"]) == 0
    assert "sentences encoded" in capsys.readouterr().err

    assert sorted(p.name for p in multi.iterdir()) == ["sr-t", *(f"sr-t@layer{k}" for k in range(8))]
    plain_units, multi_units = units(plain / "sr-t"), units(multi / "sr-t")
    assert sorted(plain_units) == LANGS
    for lang in LANGS:
        assert multi_units[lang]["metrics"] == plain_units[lang]["metrics"]
        assert multi_units[lang]["settings_hash"] == plain_units[lang]["settings_hash"]
        assert multi_units[lang]["config"]["layer"] == 8 and "layers" not in multi_units[lang]["config"]
    for k in range(8):
        layer_units = units(multi / f"sr-t@layer{k}")
        assert {u["config"]["layer"] for u in layer_units.values()} == {k}
        assert len({u["settings_hash"] for u in layer_units.values()} | {multi_units["deu_Latn"]["settings_hash"]}) == 2

    # Same identity: a plain run into the --layers folder reuses the layer-8 units, recomputes nothing,
    # and a --layers rerun is a no-op too.
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, multi)) == 0
    assert "0 scored, 0 skipped, 3 already done; 0 sentences encoded" in capsys.readouterr().err
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, multi) + ["--layers", "all"]) == 0
    assert "0 languages scored, 0 skipped; 0 sentences encoded" in capsys.readouterr().err


def test_each_layer_equals_a_run_at_that_layer(tiny_model_dir, pairs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    alone, several, single = tmp_path / "alone", tmp_path / "several", tmp_path / "single"
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, alone) + ["--layers", "4", "--no-cache"]) == 0
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, several) + ["--layers", "2,4,8", "--no-cache"]) == 0
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, single) + ["--layer", "2", "--no-cache"]) == 0
    assert sorted(p.name for p in alone.iterdir()) == ["sr-t@layer4"]
    assert sorted(p.name for p in several.iterdir()) == ["sr-t", "sr-t@layer2", "sr-t@layer4"]
    assert metrics(alone / "sr-t@layer4") == metrics(several / "sr-t@layer4")
    assert metrics(single / "sr-t") == metrics(several / "sr-t@layer2")
    assert metrics(several / "sr-t@layer2") != metrics(several / "sr-t")  # the layers really differ


def test_layers_out_of_range_is_a_one_line_error(tiny_model_dir, pairs_dir, tmp_path, capsys):
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, tmp_path / "out") + ["--layers", "4,9"]) == 2
    err = capsys.readouterr().err
    assert "the model has 8 layers" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- report --by-layer
def test_report_by_layer_writes_means_per_layer_group_and_model(tiny_model_dir, pairs_dir, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "models" / "other-model"
    shutil.copytree(tiny_model_dir, other)  # another path: another model in the report
    out = tmp_path / "results"
    assert run_cli(eval_args(tiny_model_dir, pairs_dir, out) + ["--layers", "2,5,8"]) == 0
    assert run_cli(eval_args(other, pairs_dir, out) + ["--layers", "2,5,8"]) == 0
    report_dir = tmp_path / "report"
    assert run_cli(["report", str(out), "--by-layer", "--output-dir", str(report_dir)]) == 0
    capsys.readouterr()

    rows = list(csv.DictReader((report_dir / "by_layer.csv").open(encoding="utf-8")))
    assert {r["model"] for r in rows} == {tiny_model_dir.name, "other-model"}
    assert {r["task"] for r in rows} == {"sr-t"} and {r["metric"] for r in rows} == {"acc@10"}
    got = {(r["model"], r["group"], int(r["layer"])): float(r["mean"]) for r in rows}
    for layer, task in ((2, "sr-t@layer2"), (5, "sr-t@layer5"), (8, "sr-t")):
        per_lang = {lang: m["acc@10"] * 100 for lang, m in metrics_of_model(out / task, tiny_model_dir).items()}
        assert got[(tiny_model_dir.name, "all", layer)] == pytest.approx(np.mean(list(per_lang.values())))
        latin = [per_lang["deu_Latn"], per_lang["fra_Latn"]]
        assert got[(tiny_model_dir.name, "Latn", layer)] == pytest.approx(np.mean(latin))
        assert got[(tiny_model_dir.name, "non-Latn", layer)] == pytest.approx(per_lang["rus_Cyrl"])
        assert got[("other-model", "all", layer)] == got[(tiny_model_dir.name, "all", layer)]  # same weights
    assert (report_dir / "by_layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (report_dir / "by_layer.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "other-model" in svg

    assert run_cli(["report", str(out), "--by-layer", "--layer-groups", "non-Latn,all", "--output-dir",
                    str(tmp_path / "two")]) == 0
    rows = list(csv.DictReader((tmp_path / "two" / "by_layer.csv").open(encoding="utf-8")))
    assert {r["group"] for r in rows} == {"non-Latn", "all"} and len(rows) == 2 * 2 * 3  # models x groups x layers
    capsys.readouterr()
    for groups, message in (("tail", "no scored language belongs to that group"), ("nope", "not a group")):
        assert run_cli(["report", str(out), "--by-layer", "--layer-groups", groups]) == 2
        assert message in capsys.readouterr().err


def metrics_of_model(task_root: Path, model: Path) -> dict[str, dict]:
    from langsamp_cli.model import model_fingerprint
    from langsamp_cli.results import model_slug

    folder = task_root / model_slug(str(model), model_fingerprint(str(model))) / "seedna" / "units"
    return {p.stem: json.loads(p.read_text())["metrics"] for p in folder.glob("*.json")}


def test_report_by_layer_without_layered_results_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli(["report", str(tmp_path / "empty"), "--by-layer"]) == 2
    assert "no results.json" in capsys.readouterr().err


# ---------------------------------------------------------------------------- similarity --layers
def test_similarity_per_layer_equals_single_layer_runs(tiny_model_dir, tmp_path):

    sib_fixture(tmp_path / "data", n=10)
    common = ["similarity", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path / "data"), "--languages",
              "eng_Latn,rus_Cyrl,arb_Arab", "--n", "8", "--no-cache"]
    multi = tmp_path / "multi"
    result = invoke_cli(common + ["--layers", "3,8", "--output-dir", str(multi)])
    assert result.exit_code == 0, result.output
    summary = list(csv.DictReader((multi / "layers.csv").open(encoding="utf-8")))
    assert [int(r["layer"]) for r in summary] == [3, 8]
    for row in summary:
        k = int(row["layer"])
        single = tmp_path / f"single{k}"
        result = invoke_cli(common + ["--layer", str(k), "--output-dir", str(single)])
        assert result.exit_code == 0, result.output
        ours = json.loads((multi / f"layer{k}" / "similarity.json").read_text())
        theirs = json.loads((single / "similarity.json").read_text())
        assert ours["similarity"] == theirs["similarity"] and ours["provenance"]["layer"] == k
        langs, matrix = read_matrix(single / "similarity.csv")
        off = [matrix[i, j] for i in range(len(langs)) for j in range(i + 1, len(langs))]
        assert float(row["mean"]) == pytest.approx(np.mean(off), abs=1e-5)
    assert (multi / "layers.png").stat().st_size > 5_000 and (multi / "layers.svg").is_file()
