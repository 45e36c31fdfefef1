"""Figures are written, non-trivial, well-formed; the PCA command's CSV reloads with the right rows."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from langsamp_cli import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_figure(paths: list[Path], min_png_bytes: int = 10_000) -> None:
    by_suffix = {p.suffix: p for p in paths}
    assert set(by_suffix) == {".png", ".svg"}
    png = by_suffix[".png"].read_bytes()
    assert png.startswith(PNG_MAGIC)
    assert len(png) > min_png_bytes
    root = ET.parse(by_suffix[".svg"]).getroot()
    assert root.tag.endswith("svg")
    assert not list(paths[0].parent.glob(".*.tmp"))  # atomic writes leave no temp files


def svg_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_similarity_heatmap_has_every_label(tmp_path: Path) -> None:
    labels = ["eng_Latn", "rus_Cyrl", "zho_Hani", "arb_Arab"]
    matrix = np.array([[1, .5, .3, .2], [.5, 1, .4, .1], [.3, .4, 1, .25], [.2, .1, .25, 1]])
    paths = plots.plot_similarity_heatmap(matrix, labels, tmp_path / "sim")
    assert_figure(paths)
    svg = svg_text(tmp_path / "sim.svg")
    # Matplotlib writes text as glyph paths with the string in a comment/id; each label must be there.
    for label in labels:
        assert label in svg


def test_comparison_figure(tmp_path: Path) -> None:
    labels = ["a_Latn", "b_Latn", "c_Cyrl"]
    ours = np.array([[1, .6, .4], [.6, 1, .5], [.4, .5, 1]])
    base = np.array([[1, .5, .5], [.5, 1, .4], [.5, .4, 1]])
    paths = plots.plot_similarity_comparison(ours, base, ours - base, labels, ("base", "ours"), tmp_path / "cmp")
    assert_figure(paths, min_png_bytes=20_000)
    svg = svg_text(tmp_path / "cmp.svg")
    assert "base" in svg and "difference (ours - baseline)" in svg


def test_scatter_labels_a_selection_when_crowded(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(120, 2))
    labels = [f"l{i:03d}" for i in range(120)]
    groups = ["Latn" if i % 3 else "Cyrl" for i in range(120)]
    paths = plots.plot_embedding_scatter(coords, labels, groups, tmp_path / "sc", title="t", max_labels=20,
                                         always_label=["l005"])
    assert_figure(paths)
    svg = svg_text(tmp_path / "sc.svg")
    assert "20 of 120 labelled" in svg
    assert "l005" in svg  # requested labels are always shown
    far = labels[int(np.argmax(np.linalg.norm(coords - coords.mean(0), axis=1)))]
    assert far in svg  # the most outlying point is labelled
    # Matplotlib's SVG keeps every drawn string as an XML comment: exactly 20 point labels are drawn.
    assert len(re.findall(r"<!-- (l\d{3}) -->", svg)) == 20


def fake_tables(n_lang: int = 12, dim: int = 16) -> SimpleNamespace:
    rng = np.random.default_rng(1)
    codes = ["eng", "deu", "fra", "spa", "rus", "ukr", "zho", "jpn", "hin", "arb", "yue", "swh"][:n_lang]
    scripts = ["Latn", "Cyrl", "Hani", "Jpan", "Deva", "Arab"]
    return SimpleNamespace(
        lang=rng.normal(size=(n_lang, dim)).astype(np.float32), script=rng.normal(size=(6, dim)).astype(np.float32),
        lang2id={c: i for i, c in enumerate(codes)}, script2id={s: i for i, s in enumerate(scripts)},
    )


def test_pca_csv_reloads_and_matches_sklearn(tmp_path: Path) -> None:
    pytest.importorskip("langsamp_cli.languages")
    from sklearn.decomposition import PCA

    from langsamp_cli.analysis.pca import language_points, plot_table, select

    tables = fake_tables()
    points = select(language_points(tables), "eng,rus_Cyrl,zho_Hani,jpn,hin,kor_Hang")
    assert points.labels == ["eng", "rus", "zho", "jpn", "hin"]
    assert "kor_Hang" in points.skipped
    out = plot_table(points, "script", tmp_path, "fake")
    rows = list(csv.DictReader((tmp_path / "language_pca.csv").open(encoding="utf-8")))
    assert [r["label"] for r in rows] == points.labels
    assert {r["script"] for r in rows} >= {"Latn", "Cyrl"}
    expected = PCA(n_components=2, random_state=0).fit_transform(points.vectors.astype(np.float64))
    got = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    # PCA components are defined up to sign.
    assert np.allclose(np.abs(got), np.abs(expected), atol=1e-5)
    assert out.explained_variance[0] >= out.explained_variance[1] > 0
    assert_figure([p for p in out.files if p.suffix != ".csv"])


@pytest.fixture(scope="module")
def tiny_langsamp_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LangSAMP checkpoint (random tables) saved by model.py."""
    from transformers import AutoTokenizer

    from langsamp_cli.model import build_model, save_checkpoint

    tables = fake_tables()
    model = build_model(str(tiny_model_dir), tables.lang2id, tables.script2id, variant="both")
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    return Path(save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("langsamp") / "ckpt"))


def test_plot_embeddings_cli_on_a_langsamp_checkpoint(tiny_langsamp_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from langsamp_cli.cli import app

    out = tmp_path / "emb"
    result = CliRunner().invoke(app, ["plot-embeddings", "--model", str(tiny_langsamp_dir), "--languages", "all",
                                      "--color-by", "family", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "pca.json").read_text())
    assert [t["table"] for t in record["tables"]] == ["language", "script"]
    lang_rows = list(csv.DictReader((out / "language_pca.csv").open(encoding="utf-8")))
    script_rows = list(csv.DictReader((out / "script_pca.csv").open(encoding="utf-8")))
    assert len(lang_rows) == record["tables"][0]["n"] >= 3
    assert len(script_rows) == record["tables"][1]["n"] >= 3
    for stem in ("language_pca", "script_pca"):
        assert_figure([out / f"{stem}.png", out / f"{stem}.svg"])


def test_plot_embeddings_on_a_plain_checkpoint_is_one_line_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["plot-embeddings", "--model", str(tiny_model_dir), "--output-dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_many_groups_get_distinct_colours_and_small_ones_pool_as_other() -> None:
    groups = [f"g{i:02d}" for i in range(25) for _ in range(25 - i)]  # g00 has 25 points ... g24 has 1
    shown = plots.limit_groups(groups)
    named = sorted(set(shown) - {plots.OTHER_GROUP})
    assert named == [f"g{i:02d}" for i in range(plots.MAX_GROUPS)]  # the largest keep their names
    assert shown.count(plots.OTHER_GROUP) == sum(range(1, 25 - plots.MAX_GROUPS + 1))
    colours = plots._colour_map(shown + [plots.UNKNOWN_GROUP])
    rgb = [tuple(round(c, 3) for c in colours[g][:3]) for g in named]
    assert len(set(rgb)) == len(named)  # no two groups share a colour
    assert all(len({r, g, b}) > 1 for r, g, b in rgb)  # no named group is drawn grey like 'other'/'unknown'
    assert list(colours)[-2:] == [plots.OTHER_GROUP, plots.UNKNOWN_GROUP]
    few = plots._colour_map([f"h{i}" for i in range(9)])
    assert len({c[:3] for c in few.values()}) == 9 and all(len(set(c[:3])) > 1 for c in few.values())


OFFICIAL_CODES = ["arb", "cmn", "deu", "eng", "fra", "hin", "jpn", "kor", "rus", "spa", "yue", "zho"]
OFFICIAL_SCRIPTS = ["Arab", "Cyrl", "Deva", "Hang", "Hani", "Jpan", "Latn"]


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official LangSAMP layout: tables inside the state dict, flags in config.json, full_dicts.json."""
    import torch
    from safetensors.torch import save_file

    from langsamp_cli.official_format import OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY

    folder = tmp_path_factory.mktemp("official")
    rng = np.random.default_rng(2)
    save_file({OFFICIAL_LANG_KEY: torch.from_numpy(rng.normal(size=(len(OFFICIAL_CODES), 16)).astype(np.float32)),
               OFFICIAL_SCRIPT_KEY: torch.from_numpy(rng.normal(size=(len(OFFICIAL_SCRIPTS), 16)).astype(np.float32))},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "xlm-roberta", "hidden_size": 16, "use_lang_embedding": True, "use_script_embedding": True,
        "lang_size": len(OFFICIAL_CODES), "script_size": len(OFFICIAL_SCRIPTS)}), encoding="utf-8")
    (folder / "full_dicts.json").write_text(json.dumps({
        "lang2id": {c: i for i, c in enumerate(OFFICIAL_CODES)},
        "script2id": {s: i for i, s in enumerate(OFFICIAL_SCRIPTS)}}), encoding="utf-8")
    return folder


def test_plot_embeddings_on_the_official_format(official_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("langsamp_cli.languages")
    from typer.testing import CliRunner

    from langsamp_cli.cli import app

    out = tmp_path / "family"
    result = CliRunner().invoke(app, ["plot-embeddings", "--model", str(official_dir), "--languages", "Indo-European",
                                      "--color-by", "family", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((out / "language_pca.csv").open(encoding="utf-8")))
    assert sorted(r["label"] for r in rows) == ["deu", "eng", "fra", "hin", "rus", "spa"]  # a bare family name
    assert {r["family"] for r in rows} == {"Indo-European"}
    assert len(list(csv.DictReader((out / "script_pca.csv").open(encoding="utf-8")))) == len(OFFICIAL_SCRIPTS)

    out = tmp_path / "all"
    result = CliRunner().invoke(app, ["plot-embeddings", "--model", str(official_dir), "--languages", "all",
                                      "--max-labels", "3", "--label", "yue_Hant,cmn", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["label"]: r for r in csv.DictReader((out / "language_pca.csv").open(encoding="utf-8"))}
    assert list(rows) == OFFICIAL_CODES
    # Korean is colour-coded by the script the checkpoint has a row for (Hang), not the ISO default (Kore)
    assert rows["kor"]["script"] == "Hang" and rows["kor"]["lang_script"] == "kor_Hang"
    assert rows["zho"]["head_tail"] == "head" and rows["yue"]["head_tail"] == "tail"
    svg = svg_text(out / "language_pca.svg")
    assert "3 of 12 labelled" in svg
    assert "<!-- yue -->" in svg and "<!-- cmn -->" in svg  # --label names are always shown


def test_plot_embeddings_on_a_lang_only_checkpoint_plots_that_table(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer
    from typer.testing import CliRunner

    from langsamp_cli.cli import app
    from langsamp_cli.model import build_model, save_checkpoint

    tables = fake_tables()
    model = build_model(str(tiny_model_dir), tables.lang2id, tables.script2id, variant="lang")
    ckpt = save_checkpoint(model, AutoTokenizer.from_pretrained(str(tiny_model_dir)), tmp_path / "lang-only")
    out = tmp_path / "emb"
    result = CliRunner().invoke(app, ["plot-embeddings", "--model", str(ckpt), "--languages", "all",
                                      "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "no script-embedding table" in result.output
    assert [t["table"] for t in json.loads((out / "pca.json").read_text())["tables"]] == ["language"]
    assert_figure([out / "language_pca.png", out / "language_pca.svg"])
    assert not (out / "script_pca.png").exists()


def test_plot_embeddings_default_model_offline_is_a_one_line_error(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hub")}
    proc = subprocess.run([sys.executable, "-m", "langsamp_cli", "plot-embeddings", "--output-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "yihongLiu/LangSAMP" in lines[0] and "--model" in lines[0]


def test_plot_embeddings_library_entry_point_returns_what_it_wrote(tiny_langsamp_dir: Path, tmp_path: Path) -> None:
    """`analysis.pca_run.plot_embeddings` (what the command and the experiment call) vs its own files."""
    from langsamp_cli.analysis.pca_run import PlotSettings, plot_embeddings
    from langsamp_cli.errors import LangsampError

    run = plot_embeddings(PlotSettings(str(tiny_langsamp_dir), languages="eng_Latn,deu_Latn,fra_Latn,spa_Latn,kor_Hang",
                                       table="language", output_dir=str(tmp_path / "emb")))
    assert [out.table for out in run.outputs] == ["language"] and run.model_source == "local path"
    assert run.outputs[0].skipped == {"kor_Hang": "not in the language-embedding table"}
    record = json.loads((tmp_path / "emb" / "pca.json").read_text())
    assert record["tables"][0]["explained_variance"] == run.outputs[0].explained_variance
    rows = list(csv.DictReader((tmp_path / "emb" / "language_pca.csv").open(encoding="utf-8")))
    assert sorted(r["label"] for r in rows) == ["deu", "eng", "fra", "spa"] and run.outputs[0].n == 4
    assert run.files == [*run.outputs[0].files, tmp_path / "emb" / "pca.json"]
    assert all(path.is_file() for path in run.files)
    with pytest.raises(LangsampError, match="--table 'bogus' is unknown"):
        plot_embeddings(PlotSettings(str(tiny_langsamp_dir), table="bogus", output_dir=str(tmp_path / "x")))
