"""--scoring cosine | margin | csls: equal to a plain numpy re-implementation, cosine unchanged, filed apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.retrieval import retrieval_accuracy
from langsamp_cli.tasks.scoring import Scoring, pair_accuracy, scoring_from
from helpers import brute_force, results_of, run_cli

SCORINGS = (Scoring(), Scoring("margin", 4), Scoring("csls", 10), Scoring("margin", 1), Scoring("csls", 3))


def brute_scores(queries: np.ndarray, targets: np.ndarray, scoring: Scoring) -> np.ndarray:
    """The textbook formulas, one cell at a time for the neighbourhoods (float64)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    t = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    sim = q.astype(np.float64) @ t.T.astype(np.float64)
    if scoring.method == "cosine":
        return sim
    k = min(scoring.k, len(t))
    r_t = np.array([np.mean(sorted(sim[i], reverse=True)[:k]) for i in range(len(q))])      # x's nearest targets
    r_s = np.array([np.mean(sorted(sim[:, j], reverse=True)[:k]) for j in range(len(t))])   # y's nearest queries
    out = np.empty_like(sim)
    for i in range(len(q)):
        for j in range(len(t)):
            out[i, j] = (sim[i, j] / ((r_t[i] + r_s[j]) / 2) if scoring.method == "margin"
                         else 2 * sim[i, j] - r_t[i] - r_s[j])
    return out


def brute_accuracy(queries: np.ndarray, targets: np.ndarray, scoring: Scoring, ks=(1, 5, 10)) -> dict[str, float]:
    scores = brute_scores(queries, targets, scoring)
    ranks = [int(np.sum(scores[i] > scores[i, i])) for i in range(len(scores))]
    return {f"acc@{k}": float(np.mean([r < k for r in ranks])) for k in ks}


def assert_same(got: dict[str, float], expected: dict[str, float]) -> None:
    assert got.keys() == expected.keys()
    for name in got:
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name


# ---------------------------------------------------------------------------- synthetic vectors
@pytest.fixture(scope="module")
def noisy_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(160, 16)).astype(np.float32)
    queries = targets + rng.normal(scale=1.1, size=targets.shape).astype(np.float32)
    return queries, targets


@pytest.mark.parametrize("scoring", SCORINGS, ids=lambda s: f"{s.method}{s.k}")
def test_every_scoring_equals_brute_force_both_directions(noisy_pair, scoring):
    queries, targets = noisy_pair
    assert_same(pair_accuracy(queries, targets, scoring, (1, 5, 10)), brute_accuracy(queries, targets, scoring))
    assert_same(pair_accuracy(targets, queries, scoring, (1, 5, 10)), brute_accuracy(targets, queries, scoring))


def test_margin_and_csls_change_the_ranking_and_cosine_equals_faiss(noisy_pair):
    queries, targets = noisy_pair
    cosine = pair_accuracy(queries, targets, Scoring(), (1, 5, 10))
    assert cosine == retrieval_accuracy(targets, queries)  # the official faiss computation
    assert pair_accuracy(queries, targets, Scoring("margin", 4), (1,)) != cosine["acc@1"]
    hub = np.vstack([targets[:1] * 0 + 1.0, targets[1:]])  # one target near everything: a hub
    assert (pair_accuracy(queries, hub, Scoring("csls", 10), (1,))["acc@1"]
            >= pair_accuracy(queries, hub, Scoring(), (1,))["acc@1"])


def test_a_neighbourhood_larger_than_the_candidates_uses_them_all():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 8)).astype(np.float32)
    y = x + rng.normal(scale=0.5, size=x.shape).astype(np.float32)
    assert_same(pair_accuracy(x, y, Scoring("csls", 10), (1, 2)), brute_accuracy(x, y, Scoring("csls", 3), (1, 2)))


def test_scoring_settings_and_bad_values():
    assert scoring_from({"scoring": "margin", "margin_k": 7}) == Scoring("margin", 7)
    assert scoring_from({"scoring": "csls"}) == Scoring("csls", 10)
    assert scoring_from({}) == Scoring() and Scoring().record() == {}
    assert Scoring("margin", 4).record() == {"scoring": "margin", "margin_k": 4}
    with pytest.raises(LangsampError, match="--scoring dot: use one of cosine, margin, csls"):
        scoring_from({"scoring": "dot"})
    with pytest.raises(LangsampError, match="--margin-k 0"):
        Scoring("margin", 0)


# ---------------------------------------------------------------------------- real files, tiny model
def _tatoeba(shared_data: Path, tmp_path: Path, n: int) -> Path:
    """The first n lines of two real Tatoeba pairs (a copy in tmp: nothing written beside the data pack)."""
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    for lang in ("deu", "fra"):
        for side in (lang, "eng"):
            lines = (shared_data / f"tatoeba/v1/tatoeba.{lang}-eng.{side}").read_text(encoding="utf-8").splitlines()
            (folder / f"tatoeba.{lang}-eng.{side}").write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return folder


def _units(out: Path, task: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob(f"{task}/*/seedna/units/*.json")}


def test_sr_t_margin_and_csls_equal_brute_force_on_real_tatoeba(shared_data, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    data, out = _tatoeba(shared_data, tmp_path, 120), tmp_path / "out"
    common = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--output-dir", str(out)]
    for flags in ([], ["--scoring", "margin"], ["--scoring", "csls", "--csls-k", "6"]):
        assert run_cli(["eval", "sr-t", *common, *flags]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["sr-t", "sr-t@csls", "sr-t@margin"]  # filed side by side
    vectors = {}
    for lang in ("deu", "fra"):
        files = [data / f"tatoeba.{lang}-eng.{side}" for side in (lang, "eng")]
        target, english = (f.read_text(encoding="utf-8").splitlines() for f in files)
        vectors[lang] = (brute_force(tiny_model_dir, english, 8), brute_force(tiny_model_dir, target, 8))
    scorings = {"sr-t": Scoring(), "sr-t@margin": Scoring("margin", 4), "sr-t@csls": Scoring("csls", 6)}
    for task, scoring in scorings.items():
        units = _units(out, task)
        for lang, (english, target) in vectors.items():
            unit = units[f"{lang}_Latn"]
            assert_same(unit["metrics"], brute_accuracy(english, target, scoring))  # English queries, as SR-T
            assert_same(pair_accuracy(target, english, scoring, (1, 5, 10)), brute_accuracy(target, english, scoring))
            assert {k: v for k, v in unit["config"].items() if k in ("scoring", "margin_k", "csls_k")} == \
                scoring.record()  # cosine records nothing: its settings hash is that of a plain run
    hashes = {task: next(iter(_units(out, task).values()))["settings_hash"] for task in ("sr-t", "sr-t@margin")}
    assert hashes["sr-t"] != hashes["sr-t@margin"]


def test_a_k_flag_that_cannot_act_is_an_error(tiny_model_dir, tmp_path, capsys):
    code = run_cli(["eval", "sr-t", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path), "--margin-k", "3"])
    assert code == 2
    assert "--margin-k 3 only acts with --scoring margin" in capsys.readouterr().err


def test_report_shows_cosine_and_margin_side_by_side(shared_data, tiny_model_dir, tmp_path, monkeypatch):
    from langsamp_cli.report import build_report, table1_markdown

    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    data, out = _tatoeba(shared_data, tmp_path, 30), tmp_path / "out"
    common = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--output-dir", str(out), "--languages", "deu"]
    assert run_cli(["eval", "sr-t", *common, "--scoring", "margin"]) == 0
    assert run_cli(["eval", "sr-t", *common]) == 0
    rows = [line.split("|")[1].strip() for line in table1_markdown(build_report([out])).splitlines()[2:]]
    assert rows == ["SR-T", "SR-T (margin)"]
    assert [r["lang_script"] for r in results_of(out / "sr-t@margin")["languages"]] == ["deu_Latn"]
    assert [r["lang_script"] for r in results_of(out / "sr-t")["languages"]] == ["deu_Latn"]  # not replaced
