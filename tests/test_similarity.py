"""`langsamp similarity`: the numbers vs an independent computation, parallel data readers, end to end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.analysis.similarity import (PAPER_LANGUAGES, display_names, improvement_percent,
                                              pairwise_similarity)
from langsamp_cli.data.multiparallel import load_multiparallel, sample_parallel
from langsamp_cli.errors import LangsampError
from helpers import all_sample_texts, invoke_cli, read_matrix, sib_fixture, write_sib


def reference_similarity(vectors: dict[str, np.ndarray], langs: list[str]) -> np.ndarray:
    """Loop version of the paper's recipe: centre each language, mean cosine of translation pairs."""
    out = np.zeros((len(langs), len(langs)))
    for a, lang_a in enumerate(langs):
        for b, lang_b in enumerate(langs):
            xa = vectors[lang_a] - vectors[lang_a].mean(axis=0)
            xb = vectors[lang_b] - vectors[lang_b].mean(axis=0)
            cosines = [xa[i] @ xb[i] / (np.linalg.norm(xa[i]) * np.linalg.norm(xb[i])) for i in range(len(xa))]
            out[a, b] = np.mean(cosines)
    return out


def test_pairwise_similarity_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    langs = ["a_Latn", "b_Cyrl", "c_Arab"]
    vectors = {lang: rng.normal(size=(7, 5)) + rng.normal(size=5) * 3 for lang in langs}
    got = pairwise_similarity(vectors, langs)
    assert np.allclose(got, reference_similarity(vectors, langs), atol=1e-12)
    assert np.allclose(got, got.T) and np.allclose(np.diag(got), 1.0)


def test_centroid_subtraction_removes_a_language_offset() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(10, 4))
    vectors = {"x_Latn": base, "y_Latn": base + np.array([50.0, -20.0, 3.0, 9.0]), "z_Latn": -base * 2.0}
    got = pairwise_similarity(vectors, ["x_Latn", "y_Latn", "z_Latn"])
    assert got[0, 1] == pytest.approx(1.0)  # a constant shift is the language offset: gone after centring
    assert got[0, 2] == pytest.approx(-1.0)
    # Without centring the shifted copy would not be near-identical.
    raw = np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(base, vectors["y_Latn"])])
    assert raw < 0.9


def test_improvement_percent_is_relative_to_the_baseline() -> None:
    ours = np.array([[1.0, 0.5], [-0.1, 0.3]])
    baseline = np.array([[1.0, 0.4], [-0.2, 0.0]])
    got = improvement_percent(ours, baseline)
    assert got[0, 0] == 0.0
    assert got[0, 1] == pytest.approx(25.0)
    assert got[1, 0] == pytest.approx(50.0)  # -0.1 is better than -0.2: positive, over |baseline|
    assert np.isnan(got[1, 1])


def test_no_percentage_over_a_near_zero_baseline() -> None:
    """A baseline cosine of 0.003 would make +0.4 a +13,000% 'improvement': it is left empty instead."""
    ours = np.array([[1.0, 0.4], [0.4, 1.0]])
    baseline = np.array([[1.0, 0.003], [0.049, 1.0]])
    assert np.isnan(improvement_percent(ours, baseline)).sum() == 2
    assert improvement_percent(ours, np.array([[1.0, 0.05], [0.05, 1.0]]))[0, 1] == pytest.approx(700.0)


# ---------------------------------------------------------------------------- parallel data
def test_sib_alias_and_missing_are_reported(tmp_path: Path) -> None:
    sib_fixture(tmp_path)
    data = load_multiparallel(tmp_path, ["eng_Latn", "zho_Hani", "hin_Deva"])
    assert data.format == "sib200"
    assert data.used == {"eng_Latn": "eng_Latn", "zho_Hani": "zho_Hans"}
    assert data.aliased() == {"zho_Hani": "zho_Hans"}
    assert "hin_Deva" in data.missing
    assert data.sentences["zho_Hani"]["dev:100"].startswith("太初有道")


def test_sample_is_seeded_aligned_and_drops_partial_languages(tmp_path: Path) -> None:
    texts = sib_fixture(tmp_path, n=12)
    write_sib(tmp_path, "hin_Deva", [("100", "आदि 0"), ("101", "आदि 1")])  # a partial language
    data = load_multiparallel(tmp_path, ["eng_Latn", "rus_Cyrl", "zho_Hani", "hin_Deva"])
    first, again, other = (sample_parallel(data, 5, seed) for seed in (3, 3, 4))
    assert first.ids == again.ids and first.ids != other.ids
    assert "hin_Deva" in first.dropped and "hin_Deva" not in first.texts
    for lang, key in (("eng_Latn", "eng_Latn"), ("zho_Hani", "zho_Hans")):
        expected = [texts[key][int(i.split(":")[1]) - 100] for i in first.ids]
        assert first.texts[lang] == expected
    assert first.shared_available == 12


def test_line_aligned_files(tmp_path: Path) -> None:
    (tmp_path / "eng_Latn.txt").write_text("one\ntwo\n\nfour\n", encoding="utf-8")
    (tmp_path / "spa_Latn.txt").write_text("uno\ndos\ntres\ncuatro\n", encoding="utf-8")
    data = load_multiparallel(tmp_path, ["eng_Latn", "spa_Latn"])
    sample = sample_parallel(data, 10, 0)
    assert data.format == "lines"
    assert sample.ids == ["1", "2", "4"]  # line 3 is empty in English: not a pair
    assert sample.texts["spa_Latn"] == ["uno", "dos", "cuatro"]


def test_bibles_by_verse_id(tmp_path: Path) -> None:
    (tmp_path / "eng_Latn.A.tsv").write_text("40001001\tIn the beginning\n40001002\tAnd then\n", encoding="utf-8")
    (tmp_path / "spa_Latn.B.tsv").write_text("40001002\tY luego\n40001003\tDespues\n", encoding="utf-8")
    sample = sample_parallel(load_multiparallel(tmp_path, ["eng_Latn", "spa_Latn"]), 5, 0)
    assert sample.ids == ["40001002"]
    assert sample.texts == {"eng_Latn": ["And then"], "spa_Latn": ["Y luego"]}


# ---------------------------------------------------------------------------- end to end
def test_end_to_end_matches_independent_encoding(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.encode import SentenceEncoder

    texts = sib_fixture(tmp_path / "data", n=12)
    out = tmp_path / "out"
    result = invoke_cli(["similarity", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path / "data"),
                      "--languages", "eng_Latn,rus_Cyrl,zho_Hani,hin_Deva", "--n", "8", "--seed", "5",
                      "--output-dir", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "zho_Hani: using the data of zho_Hans" in result.output
    assert "hin_Deva" in result.output  # reported, not fatal
    record = json.loads((out / "similarity.json").read_text())
    assert record["provenance"]["data"]["aliased"] == {"zho_Hani": "zho_Hans"}
    assert "hin_Deva" in record["provenance"]["data"]["missing"]
    langs, matrix = read_matrix(out / "similarity.csv")
    assert langs == ["eng_Latn", "rus_Cyrl", "zho_Hani"]

    ids = record["provenance"]["data"]["sentence_ids"]
    assert len(ids) == 8
    encoder = SentenceEncoder(str(tiny_model_dir), layer=8, use_cache=False)
    source = {"eng_Latn": "eng_Latn", "rus_Cyrl": "rus_Cyrl", "zho_Hani": "zho_Hans"}
    vectors = {lang: encoder.encode([texts[source[lang]][int(i.split(":")[1]) - 100] for i in ids]) for lang in langs}
    assert np.allclose(matrix, reference_similarity(vectors, langs), atol=1e-5)
    for name in ("similarity.png", "similarity.svg"):
        assert (out / name).stat().st_size > 5_000


def test_compare_reports_improvement_and_count(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.tiny import build_tiny_model

    other = build_tiny_model(all_sample_texts(), tmp_path / "other", vocab_size=400, seed=7)
    sib_fixture(tmp_path / "data", n=10)
    out = tmp_path / "out"
    result = invoke_cli(["similarity", "--model", str(tiny_model_dir), "--compare", str(other), "--data-dir",
                      str(tmp_path / "data"), "--languages", "eng_Latn,rus_Cyrl,arb_Arab", "--n", "10",
                      "--output-dir", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "similarity.json").read_text())
    langs = record["languages"]

    def matrix(key: str) -> np.ndarray:  # full precision (the CSVs are rounded)
        return np.array([[np.nan if record[key][a][b] is None else record[key][a][b] for b in langs] for a in langs])

    ours, base, improvement = matrix("similarity"), matrix("baseline_similarity"), matrix("improvement_percent")
    relative = (ours - base) / np.abs(base) * 100
    relative[np.abs(base) < 0.05] = np.nan  # near-zero baselines: no percentage
    assert np.allclose(improvement, relative, rtol=1e-9, equal_nan=True)
    assert np.allclose(read_matrix(out / "improvement_percent.csv")[1], improvement, atol=1e-4, equal_nan=True)
    assert np.allclose(matrix("difference"), ours - base, atol=1e-12)
    assert np.allclose(read_matrix(out / "difference.csv")[1], ours - base, atol=1e-6)
    assert record["improvement_percent_skipped_pairs"] == sum(abs(base[i, j]) < 0.05 for i in range(3)
                                                              for j in range(i + 1, 3))
    # the printed table shows absolute differences, never a percentage
    assert "difference (ours - baseline)" in result.output and "%" not in result.output
    shown = ours[0, 1] - base[0, 1]
    assert f"{shown:+.2f}" in result.output
    better = sum(ours[i, j] > base[i, j] for i in range(3) for j in range(i + 1, 3))
    assert (record["pairs_improved"], record["pairs_total"]) == (better, 3)
    assert f"{better} of 3 language pairs improved" in result.output
    assert (out / "similarity_compare.png").stat().st_size > 10_000


def test_fewer_than_two_languages_is_a_one_line_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.analysis.similarity import run_similarity

    sib_fixture(tmp_path, n=4)
    with pytest.raises(LangsampError, match="at least 2 languages") as info:
        run_similarity(str(tiny_model_dir), tmp_path, ["eng_Latn", "hin_Deva"], n=4)
    assert "hin_Deva" in str(info.value) and "\n" not in str(info.value)


def test_reader_notes_are_reported_not_warned(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "bibles"
    data.mkdir()
    verses = "".join(f"4000100{i}\tverse {i}\n" for i in range(1, 6))
    for name in ("eng_Latn.A.tsv", "eng_Latn.B.tsv", "spa_Latn.C.tsv"):  # two English Bibles: one is used
        (data / name).write_text(verses, encoding="utf-8")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw Python warning would fail here
        result = invoke_cli(["similarity", "--model", str(tiny_model_dir), "--data-dir", str(data), "--languages",
                          "eng_Latn,spa_Latn", "--n", "4", "--output-dir", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "note: eng_Latn.B.tsv: eng_Latn already comes from eng_Latn.A.tsv; not used" in result.output
    record = json.loads((out / "similarity.json").read_text())
    assert record["provenance"]["data"]["sources"]["eng_Latn"][0].endswith("eng_Latn.A.tsv")
    assert record["provenance"]["data"]["notes"] == ["eng_Latn.B.tsv: eng_Latn already comes from eng_Latn.A.tsv; "
                                                     "not used"]


def test_figure_titles_tell_the_models_apart() -> None:
    assert display_names("runs/pretrain-demo/final", "runs/pretrain-vanilla/final") == (
        "pretrain-demo/final", "pretrain-vanilla/final")
    assert display_names("/x/both", "/x/vanilla") == ("both", "vanilla")
    assert display_names("out/a/checkpoint-500") == ("a/checkpoint-500", None)
    assert display_names("xlm-roberta-base", "yihongLiu/LangSAMP") == ("xlm-roberta-base", "LangSAMP")
    assert display_names("a/run/final", "b/run/final") == ("a/run/final", "b/run/final")


def run_real_sib200(model: Path, data: Path, out: Path, n: int) -> dict:
    result = invoke_cli(["similarity", "--model", str(model), "--data-dir", str(data / "sib200"), "--n", str(n),
                      "--output-dir", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "similarity.json").read_text())
    assert record["languages"] == list(PAPER_LANGUAGES) and record["n"] == n
    assert record["provenance"]["data"]["aliased"] == {"zho_Hani": "zho_Hans", "swa_Latn": "swh_Latn"}
    assert record["provenance"]["data"]["shared_sentences"] == 1004  # FLORES dev+devtest subset in SIB-200
    assert "zho_Hani: using the data of zho_Hans" in result.output
    return record


@pytest.mark.shared_data
def test_real_sib200_paper_languages_quick(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    record = run_real_sib200(tiny_model_dir, shared_data, tmp_path, n=16)
    assert len(record["provenance"]["data"]["sentence_ids"]) == 16


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_sib200_paper_protocol(tiny_model_dir: Path, shared_data: Path, tmp_path: Path) -> None:
    """The paper's setting: ten languages, 100 parallel sentences (5-90 s on 2 busy CPU cores)."""
    record = run_real_sib200(tiny_model_dir, shared_data, tmp_path, n=100)
    assert len(record["provenance"]["data"]["sentence_ids"]) == 100


def test_library_entry_point_writes_the_files_and_returns_their_numbers(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`similarity_report` (what the command and the experiment call): files, typed summary, layers."""
    from langsamp_cli.analysis.similarity_run import SimilaritySettings, similarity_report
    from langsamp_cli.tiny import build_tiny_model

    other = build_tiny_model(all_sample_texts(), tmp_path / "other", vocab_size=400, seed=7)
    sib_fixture(tmp_path / "data", n=10)
    report = similarity_report(SimilaritySettings(str(tiny_model_dir), str(tmp_path / "data"), compare=str(other),
                                                  languages=["eng_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva"], n=12,
                                                  layers=[2, 8], output_dir=str(tmp_path / "out"), no_cache=True))
    assert sorted(report.layers) == [2, 8] and report.result is None
    assert report.languages == ["eng_Latn", "rus_Cyrl", "arb_Arab"] and report.n == 10
    assert all(path.is_file() for path in report.files) and tmp_path / "out" / "layers.csv" in report.files
    assert ("not used", "hin_Deva: no sib200 data for hin_Deva (or an alias of it) in "
            f"{tmp_path / 'data'}") in report.data_notes()
    assert ("note", "only 10 sentences are shared by all languages (asked for 12)") in report.data_notes()
    for row in report.summary():
        langs, matrix = read_matrix(tmp_path / "out" / f"layer{row['layer']}" / "similarity.csv")
        _, baseline = read_matrix(tmp_path / "out" / f"layer{row['layer']}" / "similarity_baseline.csv")
        upper = np.triu_indices(len(langs), k=1)
        assert row["mean"] == pytest.approx(matrix[upper].mean(), abs=1e-5)
        assert row["pairs_improved"] == int((matrix[upper] > baseline[upper]).sum())
    assert "layer 2: mean similarity of 3 language pairs" in report.describe()
