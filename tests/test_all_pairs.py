"""sr-pairs: every ordered language pair vs a brute-force double loop, matrix files, resume, shards, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks import all_pairs
from langsamp_cli.tasks.all_pairs import memory_bytes, score_row
from langsamp_cli.tasks.retrieval_run import run_retrieval_task
from langsamp_cli.tasks.scoring import Scoring
from helpers import brute_force, read_matrix, run_cli, sib_fixture, write_lines, write_sib

TASK = "sr-pairs"
ALL_SCORINGS = (Scoring(), Scoring("margin", 4), Scoring("csls", 10))


def brute_pair(queries: np.ndarray, targets: np.ndarray, scoring: Scoring, ks=(1, 10)) -> list[float]:
    """acc@k of one pair: the formulas cell by cell in float64 (independent of langsamp's block code)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    t = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    sim = q.astype(np.float64) @ t.T.astype(np.float64)
    if scoring.method != "cosine":
        k = min(scoring.k, len(t))
        r_t = np.sort(sim, axis=1)[:, ::-1][:, :k].mean(axis=1)
        r_s = np.sort(sim, axis=0)[::-1, :][:k, :].mean(axis=0)
        sim = (sim / ((r_t[:, None] + r_s[None, :]) / 2) if scoring.method == "margin"
               else 2 * sim - r_t[:, None] - r_s[None, :])
    ranks = [(sim[i] > sim[i, i]).sum() for i in range(len(sim))]
    return [float(np.mean([r < k for r in ranks])) for k in ks]


def brute_matrix(vectors: dict[str, np.ndarray], scoring: Scoring, ks=(1, 10)) -> dict[tuple[str, str], list[float]]:
    return {(a, b): brute_pair(vectors[a], vectors[b], scoring, ks) for a in vectors for b in vectors if a != b}


# ---------------------------------------------------------------------------- synthetic vectors
@pytest.mark.parametrize("scoring", ALL_SCORINGS, ids=lambda s: s.method)
@pytest.mark.parametrize("block", [1, 2, 5])
def test_score_row_equals_a_double_loop_in_any_block_size(scoring, block):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 12))
    raw = {f"l{i}": (base + rng.normal(scale=0.4 + 0.3 * i, size=base.shape)).astype(np.float32) for i in range(5)}
    unit = {lang: v / np.linalg.norm(v, axis=1, keepdims=True) for lang, v in raw.items()}
    stacked = torch.from_numpy(np.stack(list(unit.values())))
    expected = brute_matrix(raw, scoring)
    for qi, query in enumerate(raw):
        row = score_row(stacked, qi, scoring, [1, 10], block=block).numpy()
        assert np.isnan(row[qi]).all()
        for ti, target in enumerate(raw):
            if ti != qi:
                assert row[ti].tolist() == pytest.approx(expected[(query, target)], abs=1e-12), (query, target)


def test_float16_storage_stays_close_and_memory_is_stated():
    rng = np.random.default_rng(4)
    v = rng.normal(size=(3, 50, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    full = score_row(torch.from_numpy(v), 0, Scoring(), [10])
    half = score_row(torch.from_numpy(v).half(), 0, Scoring(), [10])
    assert np.allclose(full[1:].numpy(), half[1:].numpy(), atol=0.05)
    size = memory_bytes(205, 1004, 768)
    assert size["vectors"] == 205 * 1004 * 768 * 4 and size["score_blocks"] <= 2 * all_pairs.BLOCK_BYTES
    assert memory_bytes(205, 1004, 768, "float16")["vectors"] == size["vectors"] // 2


# ---------------------------------------------------------------------------- the task end to end
def _units(out: Path, task: str = TASK) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob(f"{task}/*/seedna/units/*.json")}


def _run_dir(out: Path, task: str = TASK) -> Path:
    [folder] = list(out.glob(f"{task}/*/seedna"))
    return folder


@pytest.fixture()
def sib_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sib"
    sib_fixture(root, n=14)
    write_sib(root, "fra_Latn", [("100", "un mot seulement")])  # shares 1 id: left out, recorded
    return root


def test_every_pair_equals_a_double_loop_and_the_files_are_written(sib_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    flags = {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "output_dir": str(out), "pairs": 12}
    result = run_retrieval_task(TASK, flags)
    assert result.skipped["fra_Latn"].startswith("shares only 1 sentences")
    assert sorted(result.scores) == ["arb_Arab", "eng_Latn", "rus_Cyrl", "zho_Hans"]
    texts = {lang: [line.split("\t")[2] for line in (sib_dir / lang / "dev.tsv").read_text("utf-8").splitlines()[1:13]]
             for lang in result.scores}
    vectors = {lang: brute_force(tiny_model_dir, t, 8) for lang, t in texts.items()}
    expected = brute_matrix(vectors, Scoring())
    folder = _run_dir(out)
    for k, column in ((1, 0), (10, 1)):
        names, matrix = read_matrix(folder / f"matrix_acc@{k}.csv")
        for (a, b), values in expected.items():
            assert matrix[names.index(a), names.index(b)] == pytest.approx(values[column], abs=1e-6)
        assert np.isnan(np.diag(matrix)).all()
    names, xsim = read_matrix(folder / "matrix_xsim_error.csv")
    assert xsim[names.index("eng_Latn"), names.index("rus_Cyrl")] == pytest.approx(
        1 - expected[("eng_Latn", "rus_Cyrl")][0], abs=1e-6)
    table = (folder / "languages.csv").read_text(encoding="utf-8").splitlines()
    assert "from_eng_acc@10" in table[0] and len(table) == 5
    assert {p.name for p in folder.glob("heatmap_*")} == {"heatmap_acc@1.png", "heatmap_acc@1.svg"}
    unit = _units(out)["rus_Cyrl"]
    assert unit["metrics"]["acc@10"] == pytest.approx(np.mean([expected[("rus_Cyrl", t)][1]
                                                               for t in ("arb_Arab", "eng_Latn", "zho_Hans")]))


@pytest.mark.parametrize("scoring", ALL_SCORINGS[1:], ids=lambda s: s.method)
def test_margin_and_csls_pairs_equal_a_double_loop_on_real_sib200(scoring, shared_data, tiny_model_dir, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    languages = ["eng_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans"]
    out = tmp_path / "out"
    result = run_retrieval_task(TASK, {"model": str(tiny_model_dir), "data_dir": str(shared_data / "sib200"),
                                       "languages": ",".join(languages), "split": "dev", "pairs": 40,
                                       "scoring": scoring.method, "output_dir": str(out)})
    assert result.task == f"{TASK}@{scoring.method}" and sorted(result.scores) == sorted(languages)
    vectors = {}  # an independent encoder (helpers.brute_force) and the double loop above
    for lang in languages:
        frame = pd.read_csv(shared_data / "sib200/annotated" / lang / "dev.tsv", sep="\t")  # the official reader
        vectors[lang] = brute_force(tiny_model_dir, frame.sort_values("index_id")["text"].head(40).tolist(), 8)
    expected = brute_matrix(vectors, scoring)
    units = _units(out, result.task)
    for (a, b), values in expected.items():
        assert units[a]["extra"]["row"][b] == pytest.approx(values, abs=1e-12), (a, b)


def test_a_killed_run_resumes_without_rescoring_finished_queries(sib_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    flags = {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "output_dir": str(out), "pairs": 12,
             "languages": "eng_Latn,rus_Cyrl,zho_Hans,arb_Arab"}
    scored: list[str] = []
    real = all_pairs._score_query

    def dies_after_two(query, *args, **kwargs):
        if len(scored) == 2:
            raise KeyboardInterrupt  # the run is killed while the third query language is in flight
        real(query, *args, **kwargs)
        scored.append(query)

    monkeypatch.setattr(all_pairs, "_score_query", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_retrieval_task(TASK, flags)
    finished = {name: unit["time"] for name, unit in _units(out).items()}
    assert sorted(finished) == sorted(scored) == ["arb_Arab", "eng_Latn"]
    scored.clear()
    monkeypatch.setattr(all_pairs, "_score_query", lambda q, *a, **k: (real(q, *a, **k), scored.append(q)))
    result = run_retrieval_task(TASK, flags)
    assert scored == ["rus_Cyrl", "zho_Hans"] and sorted(result.already_done) == ["arb_Arab", "eng_Latn"]
    assert all(_units(out)[name]["time"] == time for name, time in finished.items())
    names, matrix = read_matrix(_run_dir(out) / "matrix_acc@1.csv")
    assert np.isfinite(matrix[~np.eye(4, dtype=bool)]).all()


def test_shards_and_pivots_split_the_queries_not_the_targets(sib_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    flags = {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "output_dir": str(out), "pairs": 12,
             "languages": "eng_Latn,rus_Cyrl,zho_Hans,arb_Arab"}
    first = run_retrieval_task(TASK, flags, shard="0/2")
    second = run_retrieval_task(TASK, flags, shard="1/2")
    assert sorted(first.newly_scored + second.newly_scored) == sorted(flags["languages"].split(","))
    assert len(_units(out)["eng_Latn"]["extra"]["row"]) == 3
    pivots = run_retrieval_task(TASK, {**flags, "output_dir": str(tmp_path / "p"), "pivots": "eng_Latn"})
    assert pivots.newly_scored == ["eng_Latn"]
    assert sorted(_units(tmp_path / "p")["eng_Latn"]["extra"]["row"]) == ["arb_Arab", "rus_Cyrl", "zho_Hans"]
    assert _units(tmp_path / "p")["eng_Latn"]["extra"]["row"] == _units(out)["eng_Latn"]["extra"]["row"]


def test_layers_file_each_layer_with_its_own_matrix(sib_dir, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    flags = {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "output_dir": str(out), "pairs": 12,
             "languages": "eng_Latn,rus_Cyrl,zho_Hans"}
    result = run_retrieval_task(TASK, {**flags, "layers": "4,8"})
    assert [(layer.layer, layer.task) for layer in result.layers] == [(4, f"{TASK}@layer4"), (8, TASK)]
    assert (_run_dir(out, f"{TASK}@layer4") / "matrix_acc@1.csv").is_file()
    plain = run_retrieval_task(TASK, {**flags, "output_dir": str(tmp_path / "plain"), "layer": 4})
    _, by_layers = read_matrix(_run_dir(out, f"{TASK}@layer4") / "matrix_acc@10.csv")
    _, single = read_matrix(_run_dir(tmp_path / "plain") / "matrix_acc@10.csv")
    assert np.array_equal(by_layers, single, equal_nan=True) and plain.newly_scored == sorted(plain.languages)


def test_report_summarises_the_matrix(sib_dir, tiny_model_dir, tmp_path, monkeypatch):
    from langsamp_cli.report import build_report

    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    run_retrieval_task(TASK, {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "output_dir": str(out),
                              "pairs": 12, "languages": "eng_Latn,rus_Cyrl,zho_Hans"})
    report = build_report([out])
    [line] = [n for n in report.notes if "target languages" in n]
    assert line.startswith(f"{TASK} ") and "3 query x 3 target languages" in line and "from eng_Latn" in line


def test_bad_inputs_are_one_line_errors(sib_dir, tiny_model_dir, tmp_path, capsys):
    common = ["eval", TASK, "--model", str(tiny_model_dir), "--output-dir", str(tmp_path / "out")]
    assert run_cli([*common, "--data-dir", str(sib_dir), "--pivots", "deu_Latn", "--languages",
                    "eng_Latn,rus_Cyrl"]) == 2
    assert "--pivots deu_Latn: not among the languages of this run" in capsys.readouterr().err
    lines = tmp_path / "lines"
    lines.mkdir()
    write_lines(lines / "eng_Latn.txt", ["a b", "c d"])
    write_lines(lines / "deu_Latn.txt", ["e f", "g h"])
    assert run_cli([*common, "--data-dir", str(lines), "--split", "dev"]) == 2
    assert "--split dev only acts on SIB-200/FLORES folders" in capsys.readouterr().err
    assert run_cli([*common, "--data-dir", str(sib_dir), "--languages", "eng_Latn"]) == 2
    assert "sr-pairs needs at least 2 languages" in capsys.readouterr().err
    with pytest.raises(LangsampError, match="sr-t: pivots, split only act"):
        run_retrieval_task("sr-t", {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "pivots": "eng_Latn",
                                    "split": "dev"})
    with pytest.raises(LangsampError, match="--pivots"):
        run_retrieval_task(TASK, {"model": str(tiny_model_dir), "data_dir": str(sib_dir), "pivots": "deu_Latn",
                                  "languages": "eng_Latn,rus_Cyrl"})
