"""`tasks.retrieval_run.run_retrieval_task`: the library entry point behind `langsamp eval sr-b|sr-t`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.retrieval_run import run_retrieval_task
from helpers import ENGLISH_WORDS, OTHER_WORDS, brute_force, sentences, write_lines


def _accuracy(target: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Share of English queries whose own translation is among the k most cosine-similar targets."""
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    ranks = np.argsort(-(q @ t.T), axis=1)[:, :k]
    return float(np.mean([i in row for i, row in enumerate(ranks)]))


@pytest.fixture()
def pairs(tmp_path: Path) -> dict:
    data = tmp_path / "tatoeba"
    data.mkdir()
    english = sentences(ENGLISH_WORDS, 14, seed=3)
    german = sentences(OTHER_WORDS["deu_Latn"], 14, seed=4)
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.deu_Latn", german)
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.eng_Latn", english)
    write_lines(data / "tatoeba.ita_Latn-eng_Latn.ita_Latn", english[:5])  # line counts differ: a recorded skip
    write_lines(data / "tatoeba.ita_Latn-eng_Latn.eng_Latn", english[:4])
    return {"dir": data, "english": english, "german": german}


def test_summary_matches_an_independent_computation_and_the_files(pairs, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    flags = {"model": str(tiny_model_dir), "data_dir": pairs["dir"], "output_dir": tmp_path / "out", "layer": 1}
    result = run_retrieval_task("sr-t", flags, progress=False)
    target = brute_force(tiny_model_dir, pairs["german"], 1)
    queries = brute_force(tiny_model_dir, pairs["english"], 1)
    for k in (1, 5, 10):
        assert result.scores["deu_Latn"][f"acc@{k}"] == pytest.approx(_accuracy(target, queries, k), abs=1e-6)
    assert list(result.skipped) == ["ita_Latn"] and result.skipped["ita_Latn"]
    assert (result.task, result.metric, result.layers) == ("sr-t", "acc@10", [])
    assert result.describe() == "sr-t: 1 scored, 1 skipped, 0 already done; 28 sentences encoded"
    (results_json,) = result.results
    stored = json.loads(Path(results_json).read_text(encoding="utf-8"))
    assert {r["lang_script"]: r["metrics"]["acc@10"] for r in stored["languages"]} == \
        {"deu_Latn": result.scores["deu_Latn"]["acc@10"]}
    again = run_retrieval_task("sr-t", flags, progress=False)
    assert again.newly_scored == [] and sorted(again.already_done) == ["deu_Latn", "ita_Latn"]
    assert again.scores == result.scores


def test_layers_give_one_result_set_per_layer(pairs, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    flags = {"model": str(tiny_model_dir), "data_dir": pairs["dir"], "output_dir": tmp_path / "out", "layer": 1,
             "layers": "0,1", "languages": "deu_Latn"}
    result = run_retrieval_task("sr-t", flags, progress=False)
    assert [(layer.layer, layer.task, layer.n_languages) for layer in result.layers] == \
        [(0, "sr-t@layer0", 1), (1, "sr-t", 1)]
    for layer in result.layers:
        expected = _accuracy(brute_force(tiny_model_dir, pairs["german"], layer.layer),
                             brute_force(tiny_model_dir, pairs["english"], layer.layer), 10)
        assert layer.mean == pytest.approx(expected, abs=1e-6)
    assert result.scores["deu_Latn"]["acc@10"] == result.layers[1].mean  # the task's own layer


def test_a_transfer_task_is_refused(tmp_path):
    with pytest.raises(LangsampError, match="not a retrieval task; use one of sr-b, sr-t"):
        run_retrieval_task("sib200", {"model": str(tmp_path)})
