"""`langsamp donor`: rankings on planted embeddings, URIEL, fallbacks, the default-model offline error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from langsamp_cli.analysis import donor, uriel
from langsamp_cli.errors import LangsampError

PAPER_TEN = ["eng_Latn", "rus_Cyrl", "zho_Hani", "arb_Arab", "hin_Deva", "jpn_Jpan", "tur_Latn", "spa_Latn",
             "ind_Latn", "swa_Latn"]
LANG_CODES = ["arb", "eng", "hin", "ind", "jpn", "rus", "spa", "swa", "tur", "yue", "zho", "san", "urd"]
SCRIPTS = ["Arab", "Cyrl", "Deva", "Hani", "Jpan", "Latn"]


def planted_tables(dim: int = 32, seed: int = 0) -> SimpleNamespace:
    """Random language vectors, except yue = zho + small noise and san = hin + noise (a known answer)."""
    rng = np.random.default_rng(seed)
    lang = rng.normal(size=(len(LANG_CODES), dim))
    index = {c: i for i, c in enumerate(LANG_CODES)}
    lang[index["yue"]] = lang[index["zho"]] + 0.1 * rng.normal(size=dim)
    lang[index["san"]] = lang[index["hin"]] + 0.2 * rng.normal(size=dim)
    return SimpleNamespace(lang=lang.astype(np.float32), script=rng.normal(size=(len(SCRIPTS), dim)).astype(np.float32),
                           lang2id=index, script2id={s: i for i, s in enumerate(SCRIPTS)})


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture
def without_uriel(monkeypatch: pytest.MonkeyPatch):
    """As if lang2vec were not installed (also drops feature sets an earlier test cached)."""
    monkeypatch.setattr(uriel, "_candidate_dirs", lambda: [])
    uriel._load_set.cache_clear()
    yield
    monkeypatch.undo()
    uriel._load_set.cache_clear()


# ---------------------------------------------------------------------------- ranks
def test_normalised_ranks_with_ties_and_combination() -> None:
    ranks = donor.normalised_ranks({"a": 0.9, "b": 0.5, "c": 0.5, "d": 0.1, "e": None})
    assert ranks == {"a": 1.0, "b": pytest.approx(0.5), "c": pytest.approx(0.5), "d": 0.0}
    combined = donor.combine({"lang": {"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.7},
                              "uriel": {"a": 0.2, "b": 0.8, "c": None, "d": 0.5}}, ["a", "b", "c", "d"])
    # ranks over a, b, d (the candidates both methods scored): a: lang 1.0, uriel 0.0 -> 0.5;
    # b: 0.0 and 1.0 -> 0.5; d: 0.5 and 0.5 -> 0.5; c has no URIEL score: no combined score at all
    assert combined == {"a": 0.5, "b": 0.5, "c": None, "d": 0.5}
    combined = donor.combine({"lang": {"a": 0.9, "b": 0.1, "c": None}, "uriel": {"a": 0.9, "b": 0.1, "c": 0.99}},
                             ["a", "b", "c"])
    assert combined == {"a": 1.0, "b": 0.0, "c": None}  # c, unknown to the model, does not jump to the top


# ---------------------------------------------------------------------------- embeddings
def test_planted_tables_pick_the_planted_donor() -> None:
    tables = planted_tables()
    ranking = donor.rank_donors("yue_Hani", PAPER_TEN, tables, "lang")
    assert ranking.best == "zho_Hani"
    row = tables.lang
    expected = {c: cosine(row[tables.lang2id["yue"]], row[tables.lang2id[c.split("_")[0]]]) for c in PAPER_TEN}
    assert ranking.scores["lang"] == pytest.approx(expected)
    assert ranking.ranking == sorted(PAPER_TEN, key=lambda c: -expected[c])
    assert ranking.keys["lang"]["yue_Hani"] == "yue"
    assert donor.rank_donors("san_Deva", PAPER_TEN, tables, "lang").best == "hin_Deva"
    # the script column is there too, so a user sees both signals
    assert ranking.scores["script"]["zho_Hani"] == pytest.approx(1.0)


def test_target_outside_vocabulary_falls_back_to_script(without_uriel) -> None:
    tables = planted_tables()
    ranking = donor.rank_donors("xyz_Hani", ["zho_Hani", "eng_Latn", "jpn_Jpan"], tables, "lang")
    assert "not in the language-embedding vocabulary" in ranking.notes[0]
    assert any("pip install lang2vec" in note for note in ranking.notes)  # what else could be done
    assert "lang" not in ranking.scores and ranking.ranked_by == "script"
    assert ranking.best == "zho_Hani"  # same script -> cosine 1
    expected = {c: cosine(tables.script[tables.script2id["Hani"]], tables.script[tables.script2id[c.split("_")[1]]])
                for c in ["zho_Hani", "eng_Latn", "jpn_Jpan"]}
    assert ranking.scores["script"] == pytest.approx(expected)
    # neither a language row nor a script row ('Hang') nor URIEL: nothing to rank by, a one-line error
    with pytest.raises(LangsampError, match="no language embedding, no script embedding") as info:
        donor.rank_donors("kor_Hang", PAPER_TEN, tables, "lang")
    assert "\n" not in str(info.value)


def test_script_method_and_tied_ranks(without_uriel) -> None:
    tables = planted_tables()
    ranking = donor.rank_donors("yue_Hani", PAPER_TEN, tables, "script")
    assert ranking.ranked_by == "script" and ranking.best == "zho_Hani"
    assert {"lang", "script"} == set(ranking.scores)  # the language column is shown beside it
    ranks = donor.method_ranks(ranking.scores["script"])
    latin = [c for c in PAPER_TEN if c.endswith("_Latn")]
    assert len({ranks[c] for c in latin}) == 1  # five Latin candidates tie: one shared rank
    better = sum(ranking.scores["script"][c] > ranking.scores["script"][latin[0]] for c in PAPER_TEN)
    assert ranks[latin[0]] == better + 1
    assert donor.method_ranks({"a": 0.5, "b": 0.9, "c": 0.5, "d": None}) == {"b": 1, "a": 2, "c": 2}
    # a target whose script has no row: ranked by its language embedding instead, with a note
    ranking = donor.rank_donors("yue_Hang", PAPER_TEN, tables, "script")
    assert ranking.ranked_by == "lang" and ranking.best == "zho_Hani"
    assert any("script-embedding table" in note for note in ranking.notes)


# ---------------------------------------------------------------------------- URIEL
# URIEL tests need lang2vec's data files (the `test` extra installs them); no other test here may:
# tests of the embedding paths run with URIEL made unavailable, so they give the same answer either way.
needs_lang2vec = pytest.mark.skipif(not uriel.uriel_available(),
                                    reason="URIEL data not installed (pip install lang2vec)")


@needs_lang2vec
def test_target_outside_vocabulary_falls_back_to_uriel() -> None:
    ranking = donor.rank_donors("kor_Hang", PAPER_TEN, planted_tables(), "lang")  # no 'kor' row, no 'Hang' row
    assert "not in the language-embedding vocabulary" in ranking.notes[0]
    assert ranking.ranked_by == "uriel" and set(ranking.scores) == {"uriel"}
    expected = {c: uriel.uriel_similarity("kor_Hang", c) for c in PAPER_TEN}
    assert ranking.scores["uriel"] == pytest.approx(expected)
    assert ranking.best == max(expected, key=expected.get)


@needs_lang2vec
def test_uriel_similarity_matches_the_npz_directly() -> None:
    data = np.load(uriel.uriel_data_dir() / "feature_predictions.npz")
    langs = list(data["langs"])
    feats = [str(f) for f in data["feats"]]

    def vec(code: str, prefix: str) -> np.ndarray:
        cols = [i for i, f in enumerate(feats) if f.startswith(prefix)]
        return data["data"][langs.index(code), cols, 0].astype(np.float64)

    three = ("syntax_knn", "phonology_knn", "inventory_knn")
    expected = np.mean([cosine(vec("spa", p), vec("por", p)) for p in ("S_", "P_", "INV_")])
    assert uriel.uriel_similarity("spa_Latn", "por_Latn", three) == pytest.approx(expected)
    assert uriel.uriel_distance("spa_Latn", "por_Latn", three) == pytest.approx(1 - expected)
    assert uriel.uriel_similarity("spa_Latn", "por_Latn") == pytest.approx(cosine(vec("spa", "S_"), vec("por", "S_")))
    assert uriel.uriel_similarity("spa_Latn", "por_Latn") > uriel.uriel_similarity("spa_Latn", "jpn_Jpan")
    assert uriel.uriel_similarity("spa_Latn", "qqq_Latn") is None


@needs_lang2vec
def test_uriel_method_and_combined_show_methods_side_by_side() -> None:
    for target, related in (("por_Latn", "spa_Latn"), ("yue_Hani", "zho_Hani"), ("urd_Arab", "hin_Deva")):
        assert donor.rank_donors(target, PAPER_TEN, None, "uriel").best == related
    ranking = donor.rank_donors("por_Latn", PAPER_TEN, None, "uriel")
    assert set(ranking.scores) == {"uriel"}
    combined = donor.rank_donors("yue_Hani", PAPER_TEN, planted_tables(), "combined")
    assert {"lang", "uriel", "combined"} <= set(combined.scores)
    lang_ranks = donor.normalised_ranks(combined.scores["lang"])
    uriel_ranks = donor.normalised_ranks(combined.scores["uriel"])
    for c in PAPER_TEN:
        assert combined.scores["combined"][c] == pytest.approx((lang_ranks[c] + uriel_ranks[c]) / 2)
    # a candidate the language table lacks gets no combined score and goes last, with a note
    tables = planted_tables()
    del tables.lang2id["tur"]
    partial = donor.rank_donors("yue_Hani", PAPER_TEN, tables, "combined")
    assert partial.scores["combined"]["tur_Latn"] is None and partial.ranking[-1] == "tur_Latn"
    assert partial.scores["uriel"]["tur_Latn"] is not None
    assert any("tur_Latn (no lang score)" in note for note in partial.notes)
    nine = [c for c in PAPER_TEN if c != "tur_Latn"]
    lang_ranks = donor.normalised_ranks({c: partial.scores["lang"][c] for c in nine})
    uriel_ranks = donor.normalised_ranks({c: partial.scores["uriel"][c] for c in nine})
    for c in nine:
        assert partial.scores["combined"][c] == pytest.approx((lang_ranks[c] + uriel_ranks[c]) / 2)


def test_missing_lang2vec_gives_the_install_hint(without_uriel) -> None:
    with pytest.raises(LangsampError, match="pip install lang2vec"):
        donor.rank_donors("por_Latn", PAPER_TEN, None, "uriel")
    with pytest.raises(LangsampError, match="pip install lang2vec"):
        donor.rank_donors("yue_Hani", PAPER_TEN, planted_tables(), "combined")
    # with --method lang it is only a note: an unknown target is still ranked by script embedding
    ranking = donor.rank_donors("xyz_Hani", PAPER_TEN, planted_tables(), "lang")
    assert any("pip install lang2vec" in note for note in ranking.notes)
    assert ranking.ranked_by == "script" and ranking.best == "zho_Hani"


@needs_lang2vec
def test_uriel_data_found_when_the_lang2vec_script_shadows_the_package(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """lang2vec installs bin/lang2vec.py; run as the `langsamp` console script, bin/ is sys.path[0] and
    find_spec('lang2vec') returns that plain module. The data must still be found."""
    import importlib.util

    (tmp_path / "lang2vec.py").write_text("raise SystemExit('must not be imported')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    spec = importlib.util.find_spec("lang2vec")
    assert spec is not None and spec.origin == str(tmp_path / "lang2vec.py")  # the shadowing really happens
    folder = uriel.uriel_data_dir()
    assert (folder / "feature_predictions.npz").is_file() and folder.parent.name == "lang2vec"


# ---------------------------------------------------------------------------- candidates
def test_candidates_from_task_training_data(tmp_path: Path) -> None:
    layout = (("eng_Latn", ("train", "dev", "test")), ("zho_Hans", ("train", "dev")), ("yue_Hant", ("test",)))
    for lang, splits in layout:
        (tmp_path / lang).mkdir()
        for split in splits:
            (tmp_path / lang / f"{split}.tsv").write_text("index_id\tcategory\ttext\n1\thealth\tx\n", encoding="utf-8")
    assert donor.parse_candidates("task:sib200", None, tmp_path) == ["eng_Latn", "zho_Hans"]
    assert donor.parse_candidates(None) == PAPER_TEN


# ---------------------------------------------------------------------------- CLI
def test_default_model_offline_is_a_fast_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hub")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "langsamp_cli", "donor", "--target", "yue_Hani"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "yihongLiu/LangSAMP" in message and "HF_HUB_OFFLINE" in message and "--model" in message
    assert time.perf_counter() - start < 60


@pytest.fixture(scope="module")
def planted_checkpoint(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LangSAMP checkpoint saved by model.py whose tables are overwritten with planted_tables()."""
    import torch
    from transformers import AutoTokenizer

    from langsamp_cli.model import build_model, save_checkpoint

    tables = planted_tables(dim=64)
    model = build_model(str(tiny_model_dir), tables.lang2id, tables.script2id, variant="both")
    with torch.no_grad():
        model.lang_embeddings.weight.copy_(torch.from_numpy(tables.lang))
        model.script_embeddings.weight.copy_(torch.from_numpy(tables.script))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    return Path(save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("planted") / "ckpt"))


def run_cli(args: list[str]):
    from typer.testing import CliRunner

    from langsamp_cli.cli import app

    return CliRunner().invoke(app, args)


def test_cli_json_on_a_planted_checkpoint(planted_checkpoint: Path) -> None:
    result = run_cli(["donor", "--target", "yue_Hani", "--model", str(planted_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)  # stdout holds the JSON only
    assert record["best"] == "zho_Hani" and record["ranked_by"] == "lang"
    tables = planted_tables(dim=64)
    yue = tables.lang[tables.lang2id["yue"]]
    for row in record["ranking"]:
        code = row["candidate"].split("_")[0]
        assert row["lang"] == pytest.approx(cosine(yue, tables.lang[tables.lang2id[code]]), abs=1e-5)
    assert [r["rank"] for r in record["ranking"]] == list(range(1, 11))


def test_cli_unknown_target_shows_other_rankings(planted_checkpoint: Path, without_uriel) -> None:
    # Wu Chinese has no row in the planted table; the script embedding still ranks the candidates
    result = run_cli(["donor", "--target", "wuu_Hani", "--model", str(planted_checkpoint), "--top", "3"])
    assert result.exit_code == 0, result.output
    assert "not in the language-embedding vocabulary" in result.output
    assert "pip install lang2vec" in result.output  # the typology route, and how to get it
    assert "script cos" in result.output and "lang cos" not in result.output
    assert "best donor for wuu_Hani: zho_Hani (by script)" in result.output


@needs_lang2vec
def test_cli_unknown_target_with_uriel(planted_checkpoint: Path) -> None:
    result = run_cli(["donor", "--target", "wuu_Hani", "--model", str(planted_checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["ranked_by"] == "uriel" and record["best"] == "zho_Hani"
    assert "not in the language-embedding vocabulary" in record["notes"][0]
    row = record["ranking"][0]
    assert row["script"] == pytest.approx(1.0) and row["method_ranks"] == {"script": 1, "uriel": 1}


@needs_lang2vec
def test_cli_combined_shows_methods_side_by_side(planted_checkpoint: Path) -> None:
    result = run_cli(["donor", "--target", "yue_Hani", "--model", str(planted_checkpoint), "--method", "combined"])
    assert result.exit_code == 0, result.output
    for column in ("lang cos", "URIEL sim", "combined"):
        assert column in result.output
    assert "best donor for yue_Hani: zho_Hani" in result.output


def test_cli_evaluate_runs_english_and_the_donor(planted_checkpoint: Path, tmp_path: Path) -> None:
    from helpers import SAMPLE_TEXTS

    labels = ["health", "sports"]
    for lang, key in (("eng_Latn", "eng_Latn"), ("zho_Hans", "zho_Hani"), ("yue_Hant", "zho_Hani")):
        (tmp_path / "sib" / lang).mkdir(parents=True)
        for split in ("train", "dev", "test"):
            rows = [f"{i}\t{labels[i % 2]}\t{SAMPLE_TEXTS[key][i % 2]} {i}" for i in range(8)]
            (tmp_path / "sib" / lang / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + "\n".join(rows) + "\n",
                                                                  encoding="utf-8")
    result = run_cli(["donor", "--target", "yue_Hani", "--model", str(planted_checkpoint), "--json",
                      "--evaluate", "sib200", "--data-dir", str(tmp_path / "sib"),
                      "--output-dir", str(tmp_path / "out"),
                      "--eval-option", "epochs=1", "--eval-option", "labels=[health, sports]"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    evaluation = record["evaluation"]
    assert (evaluation["english"], evaluation["donor"]) == ("eng_Latn", "zho_Hani")
    scores = evaluation["per_language"]["yue_Hani"]
    for role, source in (("english", "eng_Latn"), ("donor", "zho_Hani")):
        path = evaluation["results"][source]
        assert f"source-{source}" in path and Path(path).is_file()
        [record] = [r for r in json.loads(Path(path).read_text(encoding="utf-8"))["languages"]
                    if r["lang_script"] == "yue_Hani"]
        assert scores[role] == record["metrics"][evaluation["metric"]]  # the score the run recorded, per source


def test_the_target_under_another_id_is_not_a_donor(without_uriel) -> None:
    # task:sib200 candidates use FLORES ids: yue_Hant is the target yue_Hani itself, zho_Hans a real donor
    ranking = donor.rank_donors("yue_Hani", ["yue_Hant", "zho_Hans", "eng_Latn", "yue_Hani"], planted_tables(), "lang")
    assert ranking.candidates == ["zho_Hans", "eng_Latn"]
    assert ranking.best == "zho_Hans"
    assert any("yue_Hant" in note and "target language itself" in note for note in ranking.notes)
