"""SR-B / SR-T: accuracy vs an independent computation, English dedupe, skips, shards, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.data.parallel import ParallelPairs
from langsamp_cli.encode import SentenceEncoder
from langsamp_cli.tasks.retrieval import retrieval_accuracy, score_pairs
from helpers import ENGLISH_WORDS, OTHER_WORDS, brute_force, results_of, run_cli, sentences, write_lines

def brute_force_accuracy(target: np.ndarray, queries: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """Cosine similarity in numpy; query i is right at k when fewer than k targets beat target i."""
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ t.T.astype(np.float64)
    rank = (sims > np.diag(sims)[:, None]).sum(axis=1)
    return {f"acc@{k}": float((rank < k).mean()) for k in ks}


def test_accuracy_matches_brute_force_cosine():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(300, 24)).astype(np.float32)
    queries = target + rng.normal(scale=1.3, size=target.shape).astype(np.float32)
    got = retrieval_accuracy(target, queries)
    assert got == brute_force_accuracy(target, queries)
    assert 0.05 < got["acc@1"] < got["acc@5"] < got["acc@10"] < 1.0  # a case that can tell k apart
    assert retrieval_accuracy(target, target) == {"acc@1": 1.0, "acc@5": 1.0, "acc@10": 1.0}
    assert retrieval_accuracy(target[:3], queries[:3])["acc@10"] == 1.0  # fewer targets than k


def test_scores_match_an_independent_pipeline(tiny_model_dir):
    english = sentences(ENGLISH_WORDS, 40, seed=1)
    target = sentences(OTHER_WORDS["deu_Latn"], 40, seed=1)
    encoder = SentenceEncoder(str(tiny_model_dir), layer=8, batch_size=8, use_cache=False)
    got = score_pairs(ParallelPairs("deu_Latn", target, english), encoder, [8])[8]
    expected = brute_force_accuracy(brute_force(tiny_model_dir, target, 8), brute_force(tiny_model_dir, english, 8))
    assert got == expected


def test_shared_english_is_encoded_once(tiny_model_dir):
    english = sentences(ENGLISH_WORDS, 30, seed=2)
    encoder = SentenceEncoder(str(tiny_model_dir), batch_size=8, use_cache=False)
    seen: list[str] = []
    network = encoder._run_network
    encoder._run_network = lambda texts, layers, progress: (seen.extend(texts), network(texts, layers, progress))[1]
    targets = {lang: sentences(words, 30, seed=3) for lang, words in OTHER_WORDS.items()}
    for lang, target in targets.items():
        score_pairs(ParallelPairs(lang, target, english), encoder, [encoder.layer])
    assert sorted(seen) == sorted(set(english) | {s for t in targets.values() for s in t})
    assert len(seen) == len(set(seen))


# ---------------------------------------------------------------------------- CLI end to end
def records_by_language(results: dict) -> tuple[dict[str, dict], dict[str, str]]:
    """Scored records and skip reasons from the merged results.json."""
    scored = {r["lang_script"]: r for r in results["languages"]}
    skipped = {r["lang_script"]: r["reason"] for r in results["skipped"]}
    return scored, skipped


@pytest.fixture()
def tatoeba_dir(tmp_path: Path) -> Path:
    data = tmp_path / "tatoeba"
    data.mkdir()
    english = sentences(ENGLISH_WORDS, 24, seed=5)
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.deu_Latn", sentences(OTHER_WORDS["deu_Latn"], 24, seed=6))
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.eng_Latn", english)
    fra = sentences(OTHER_WORDS["fra_Latn"], 24, seed=7)
    fra[3] = ""
    write_lines(data / "tatoeba.fra_Latn-eng_Latn.fra_Latn", fra)
    write_lines(data / "tatoeba.fra_Latn-eng_Latn.eng_Latn", english)
    write_lines(data / "tatoeba.rus-eng.rus", sentences(OTHER_WORDS["rus_Cyrl"], 24, seed=8))  # LASER layout
    write_lines(data / "tatoeba.rus-eng.eng", sentences(ENGLISH_WORDS, 24, seed=9))
    write_lines(data / "tatoeba.ita_Latn-eng_Latn.ita_Latn", english[:5])
    write_lines(data / "tatoeba.ita_Latn-eng_Latn.eng_Latn", english[:4])
    write_lines(data / "tatoeba.por_Latn-eng_Latn.por_Latn", english[:4])
    return data


def test_sr_t_cli_scores_records_skips_and_resumes(tiny_model_dir, tatoeba_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    base = ["eval", "sr-t", "--model", str(tiny_model_dir), "--data-dir", str(tatoeba_dir), "--output-dir", str(out),
            "--batch-size", "8"]
    assert run_cli(base + ["--languages", "deu_Latn,fra_Latn,rus_Cyrl,ita_Latn,por_Latn,spa_Latn"]) == 0
    scored, skipped = records_by_language(results_of(out))
    assert "warning fra_Latn: 1 pair(s) with an empty side left out" in capsys.readouterr().err

    assert sorted(scored) == ["deu_Latn", "fra_Latn", "rus_Cyrl"]
    assert scored["fra_Latn"]["n"] == 23 and scored["fra_Latn"]["extra"]["dropped_empty"] == 1
    assert scored["deu_Latn"]["n"] == 24 and scored["deu_Latn"]["extra"]["dropped_empty"] == 0
    assert "has 5 lines but" in skipped["ita_Latn"]
    assert "eng_Latn: file not found" in skipped["por_Latn"]
    assert "no data files for spa_Latn" in skipped["spa_Latn"]

    deu_target = (tatoeba_dir / "tatoeba.deu_Latn-eng_Latn.deu_Latn").read_text(encoding="utf-8").splitlines()
    deu_english = (tatoeba_dir / "tatoeba.deu_Latn-eng_Latn.eng_Latn").read_text(encoding="utf-8").splitlines()
    expected = brute_force_accuracy(brute_force(tiny_model_dir, deu_target, 8), brute_force(tiny_model_dir, deu_english, 8))
    assert scored["deu_Latn"]["metrics"] == pytest.approx(expected)

    capsys.readouterr()
    assert run_cli(base) == 0  # rerun over every language found: finished ones are not redone
    err = capsys.readouterr().err
    assert "0 sentences encoded" in err and "already done" in err


def test_sr_t_cli_shards_cover_everything(tiny_model_dir, tatoeba_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    base = ["eval", "sr-t", "--model", str(tiny_model_dir), "--data-dir", str(tatoeba_dir), "--output-dir", str(out)]
    assert run_cli(base + ["--shard", "0/2"]) == 0
    first_scored, first_skipped = records_by_language(results_of(out))
    assert run_cli(base + ["--shard", "1/2"]) == 0
    scored, skipped = records_by_language(results_of(out))
    assert 0 < len(first_scored) + len(first_skipped) < 5
    assert sorted(scored) == ["deu_Latn", "fra_Latn", "rus_Cyrl"] and sorted(skipped) == ["ita_Latn", "por_Latn"]


def test_sr_b_cli_from_whole_bibles(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    bibles = tmp_path / "bibles"
    bibles.mkdir()
    verse_ids = [40001000 + v for v in range(1, 31)]
    english = dict(zip(verse_ids, sentences(ENGLISH_WORDS, 30, seed=11)))
    write_lines(bibles / "eng_Latn.E.tsv", [f"{v}\t{t}" for v, t in english.items()])
    deu = sentences(OTHER_WORDS["deu_Latn"], 30, seed=12)
    write_lines(bibles / "deu_Latn.D.tsv", [f"{v}\t{t}" for v, t in zip(reversed(verse_ids), deu)])
    segs = "".join(f'<seg id="b.MAT.1.{v % 1000}" type="verse">{t}</seg>\n'
                   for v, t in zip(verse_ids[5:], sentences(OTHER_WORDS["fra_Latn"], 25, seed=13)))
    (bibles / "French-NT.xml").write_text(
        f'<cesDoc><cesHeader><language iso639="fra">French</language></cesHeader><text><body>{segs}</body></text></cesDoc>',
        encoding="utf-8")
    write_lines(bibles / "mystery.tsv", ["40001001\tx"])
    out = tmp_path / "results"
    args = ["eval", "sr-b", "--model", str(tiny_model_dir), "--bible-dir", str(bibles), "--english-bible",
            str(bibles / "eng_Latn.E.tsv"), "--pairs", "20", "--output-dir", str(out)]
    assert run_cli(args) == 0
    scored, skipped = records_by_language(results_of(out))
    assert sorted(scored) == ["deu_Latn", "fra_Latn"] and list(skipped) == ["mystery.tsv"]
    assert scored["deu_Latn"]["n"] == 20 and scored["fra_Latn"]["n"] == 20
    assert scored["fra_Latn"]["extra"]["verse_ids"] == {"first": 40001006, "last": 40001025}

    # the same numbers, independently: first 20 shared verse ids in order
    shared = verse_ids[:20]
    deu_by_id = dict(zip(reversed(verse_ids), deu))
    expected = brute_force_accuracy(brute_force(tiny_model_dir, [deu_by_id[v] for v in shared], 8),
                                    brute_force(tiny_model_dir, [english[v] for v in shared], 8))
    assert scored["deu_Latn"]["metrics"] == pytest.approx(expected)


def test_sr_b_cli_from_one_bible_pair(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """--bible FILE + --english-bible FILE: a verse-id pair with no folder; --bible wins over --bible-dir."""
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    verse_ids = [41002000 + v for v in range(1, 26)]
    english = dict(zip(verse_ids, sentences(ENGLISH_WORDS, 25, seed=31)))
    english_file = tmp_path / "eng_Latn.E.tsv"
    write_lines(english_file, [f"{v}\t{t}" for v, t in english.items()])
    mine = tmp_path / "mine" / "deu_Latn.Mine.tsv"
    mine.parent.mkdir()
    deu = dict(zip(verse_ids[2:], sentences(OTHER_WORDS["deu_Latn"], 23, seed=32)))
    write_lines(mine, [f"{v}\t{t}" for v, t in deu.items()])
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, words, seed in (("deu_Latn.Other.tsv", ENGLISH_WORDS, 33), ("rus_Cyrl.R.tsv", OTHER_WORDS["rus_Cyrl"], 34)):
        write_lines(folder / name, [f"{v}\t{t}" for v, t in zip(verse_ids, sentences(words, 25, seed))])
    out = tmp_path / "results"
    assert run_cli(["eval", "sr-b", "--model", str(tiny_model_dir), "--bible", str(mine), "--english-bible",
                    str(english_file), "--pairs", "20", "--output-dir", str(out)]) == 0
    scored, skipped = records_by_language(results_of(out))
    assert list(scored) == ["deu_Latn"] and not skipped
    assert scored["deu_Latn"]["n"] == 20
    assert scored["deu_Latn"]["extra"]["verse_ids"] == {"first": 41002003, "last": 41002022}
    shared = verse_ids[2:22]
    expected = brute_force_accuracy(brute_force(tiny_model_dir, [deu[v] for v in shared], 8),
                                    brute_force(tiny_model_dir, [english[v] for v in shared], 8))
    assert scored["deu_Latn"]["metrics"] == pytest.approx(expected)

    out2 = tmp_path / "results2"
    assert run_cli(["eval", "sr-b", "--model", str(tiny_model_dir), "--bible", str(mine), "--bible-dir", str(folder),
                    "--english-bible", str(english_file), "--output-dir", str(out2)]) == 0
    scored, _ = records_by_language(results_of(out2))
    assert sorted(scored) == ["deu_Latn", "rus_Cyrl"]
    assert scored["deu_Latn"]["extra"]["sources"][0] == str(mine)
    assert scored["deu_Latn"]["extra"]["unused_editions"] == ["deu_Latn.Other.tsv"]


def test_sr_b_cli_official_pairs_share_english(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "srb"
    data.mkdir()
    english = sentences(ENGLISH_WORDS, 20, seed=21)
    for lang, words in OTHER_WORDS.items():
        write_lines(data / f"bible.{lang}-eng_Latn.{lang}", sentences(words, 20, seed=22))
        write_lines(data / f"bible.{lang}-eng_Latn.eng_Latn", english)
    assert run_cli(["eval", "sr-b", "--model", str(tiny_model_dir), "--data-dir", str(data), "--no-cache",
                    "--output-dir", str(tmp_path / "results")]) == 0
    assert "3 scored, 0 skipped, 0 already done; 80 sentences encoded" in capsys.readouterr().err
    scored, _ = records_by_language(results_of(tmp_path / "results"))
    assert sorted(scored) == sorted(OTHER_WORDS)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "12"], "--layer 12 is out of range"),
        (["--data-dir", "/nonexistent"], "is not a directory"),
        (["--bible-dir", "."], "--bible/--bible-dir need --english-bible"),
        (["--english-bible", "x.tsv"], "--english-bible needs target Bibles"),
        (["--bible", "missing.tsv", "--english-bible", "x.tsv"], "not found"),
    ],
)
def test_cli_user_errors_are_one_line(tiny_model_dir, tmp_path, capsys, extra, message):
    data = tmp_path / "d"
    data.mkdir()
    write_lines(data / "bible.deu_Latn-eng_Latn.deu_Latn", ["a"])
    args = ["eval", "sr-b", "--model", str(tiny_model_dir), "--output-dir", str(tmp_path / "r")]
    if not {"--data-dir", "--bible-dir", "--bible", "--english-bible"} & set(extra):
        args += ["--data-dir", str(data)]
    assert run_cli(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---------------------------------------------------------------------------- models with few positions
def test_default_max_length_is_capped_at_the_model_limit(short_model_dir, tatoeba_dir, tmp_path, monkeypatch,
                                                          capsys):
    """The task default (512) would not fit a short model: it is capped with a note; a flag is never changed."""
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    base = ["eval", "sr-t", "--model", str(short_model_dir), "--data-dir", str(tatoeba_dir), "--output-dir", str(out),
            "--languages", "deu_Latn"]
    assert run_cli(base) == 0
    assert "max_length 512 capped at 32" in capsys.readouterr().err
    results = results_of(out)
    assert results["provenance"]["config"]["max_length"] == 32 and results["languages"][0]["n"] == 24
    assert run_cli(base + ["--max-length", "64", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--max-length 64 is more than" in err and "Traceback" not in err


def test_a_yaml_defined_task_files_results_under_its_own_name(tiny_model_dir, tatoeba_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    task_file = tmp_path / "mini.yaml"
    task_file.write_text("include: sr-t\ntask: tatoeba-mini\npairs: 10\n", encoding="utf-8")
    out = tmp_path / "results"
    assert run_cli(["eval", "sr-t", "--config", str(task_file), "--model", str(tiny_model_dir), "--data-dir",
                    str(tatoeba_dir), "--output-dir", str(out), "--languages", "deu_Latn"]) == 0
    (results_file,) = out.glob("*/*/seedna/results.json")
    assert results_file.parts[-4] == "tatoeba-mini"
    scored, _ = records_by_language(json.loads(results_file.read_text(encoding="utf-8")))
    assert scored["deu_Latn"]["n"] == 10
