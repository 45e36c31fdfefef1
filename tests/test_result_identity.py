"""A result belongs to its model and settings: stale units are recomputed, mixed runs are not averaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.results import ResultStore, settings_hash, unit_mismatch
from langsamp_cli.tiny import build_tiny_model
from helpers import all_sample_texts
from helpers import ENGLISH_WORDS, OTHER_WORDS, results_of, run_cli, sentences, write_lines


@pytest.fixture()
def tatoeba(tmp_path: Path) -> Path:
    data = tmp_path / "tatoeba"
    data.mkdir()
    english = sentences(ENGLISH_WORDS, 40, seed=5)
    for lang, seed in (("deu_Latn", 6), ("fra_Latn", 7)):
        write_lines(data / f"tatoeba.{lang}-eng_Latn.{lang}", sentences(OTHER_WORDS[lang], 40, seed=seed))
        write_lines(data / f"tatoeba.{lang}-eng_Latn.eng_Latn", english)
    return data


def _sr_t(model: Path, data: Path, out: Path, *extra: str) -> dict:
    args = ["eval", "sr-t", "--model", str(model), "--data-dir", str(data), "--output-dir", str(out),
            "--batch-size", "8", "--no-cache", *extra]
    assert run_cli(args) == 0
    return {r["lang_script"]: r for r in results_of(out)["languages"]}


def test_a_model_replaced_at_the_same_path_is_scored_again(tmp_path: Path, tatoeba: Path, capsys) -> None:
    """Result folders are named by the model's content fingerprint: new weights at the same path get their own
    folder (the old results stay, under the old weights' name) and are scored afresh."""
    from langsamp_cli.model import model_fingerprint

    model = tmp_path / "model"
    build_tiny_model(all_sample_texts(), model, vocab_size=300, seed=1)
    out = tmp_path / "results"
    old = _sr_t(model, tatoeba, out, "--languages", "deu_Latn")
    old_folder = out / "sr-t" / f"{tmp_path.name}--model-{model_fingerprint(str(model))[:8]}"
    assert (old_folder / "seedna" / "results.json").is_file()
    shutil.rmtree(model)
    build_tiny_model(all_sample_texts(), model, vocab_size=300, seed=2)  # new weights, same path
    capsys.readouterr()
    assert run_cli(["eval", "sr-t", "--model", str(model), "--data-dir", str(tatoeba), "--output-dir", str(out),
                    "--batch-size", "8", "--no-cache", "--languages", "deu_Latn"]) == 0
    assert "0 already done" in capsys.readouterr().err
    new_folder = out / "sr-t" / f"{tmp_path.name}--model-{model_fingerprint(str(model))[:8]}"
    assert new_folder != old_folder and (old_folder / "seedna" / "results.json").is_file()
    rerun = json.loads((new_folder / "seedna" / "results.json").read_text())["languages"][0]
    fresh = _sr_t(model, tatoeba, tmp_path / "fresh", "--languages", "deu_Latn")
    assert rerun["metrics"] == fresh["deu_Latn"]["metrics"] != old["deu_Latn"]["metrics"]

    capsys.readouterr()
    _sr_t(model, tatoeba, tmp_path / "fresh", "--languages", "deu_Latn")  # same model and settings: reused
    assert "1 already done" in capsys.readouterr().err


def test_changed_pairs_recompute_the_unit_and_leave_stale_ones_out(tiny_model_dir: Path, tatoeba: Path,
                                                                   tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    first = _sr_t(tiny_model_dir, tatoeba, out, "--pairs", "20")
    assert first["deu_Latn"]["n"] == 20 and first["fra_Latn"]["n"] == 20
    capsys.readouterr()
    second = _sr_t(tiny_model_dir, tatoeba, out, "--pairs", "30", "--languages", "deu_Latn")
    err = capsys.readouterr().err
    assert "deu_Latn: stored result was made with other settings (pairs: 20 -> 30)" in err
    assert second["deu_Latn"]["n"] == 30
    assert "fra_Latn" not in second  # made with --pairs 20: never averaged with the n=30 unit
    merged = results_of(out)
    assert [s["lang_script"] for s in merged["stale"]] == ["fra_Latn"]
    assert merged["groups"]["all"]["n_languages"] == 1
    assert "left out of results.json (fra_Latn)" in err


# ---------------------------------------------------------------------------- the store and report
def _store(root: Path, seed: int, fingerprint: str, **config) -> ResultStore:
    return ResultStore(root, "sr-t", "some/model", seed, {"pairs": 1000, "layer": 8, "seed": seed, **config},
                       "acc@10", fingerprint=fingerprint)


def test_unit_reuse_needs_the_same_fingerprint_and_settings(tmp_path: Path) -> None:
    messages: list[str] = []
    store = _store(tmp_path, 1, "aaa")
    store.write("deu_Latn", 10, {"acc@10": 0.5})
    same = _store(tmp_path, 1, "aaa", output_dir="elsewhere", batch_size=4)  # run-only keys do not count
    assert same.is_done("deu_Latn")
    other_model = _store(tmp_path, 1, "bbb")  # another model at the same path: its own folder
    other_model.notify = messages.append
    assert other_model.run_dir != store.run_dir and not other_model.is_done("deu_Latn")
    other_pairs = _store(tmp_path, 1, "aaa", pairs=200)
    other_pairs.notify = messages.append
    assert not other_pairs.is_done("deu_Latn")
    assert messages == [
        "deu_Latn: stored result was made with other settings (pairs: 1000 -> 200); recomputing and replacing it",
    ]
    unit = json.loads(store.unit_path("deu_Latn").read_text(encoding="utf-8"))
    assert unit_mismatch(unit, "bbb", store.config).startswith("another model (fingerprint aaa, now bbb)")
    other_pairs.write("deu_Latn", 10, {"acc@10": 0.7})
    unit = json.loads(other_pairs.unit_path("deu_Latn").read_text(encoding="utf-8"))
    assert unit["metrics"] == {"acc@10": 0.7} and unit["settings_hash"] == settings_hash(other_pairs.config)
    assert unit_mismatch(unit, "aaa", other_pairs.config) is None
    assert settings_hash({"pairs": 1, "seed": 1}) == settings_hash({"pairs": 1, "seed": 2})


def test_report_refuses_to_average_seeds_made_with_different_settings(tmp_path: Path) -> None:
    from langsamp_cli.report import build_report

    one = _store(tmp_path, 1, "aaa")
    one.write("deu_Latn", 10, {"acc@10": 0.5})
    one.finalize()
    two = _store(tmp_path, 2, "aaa", pairs=200)
    two.write("deu_Latn", 10, {"acc@10": 0.9})
    two.finalize()
    with pytest.raises(LangsampError, match=r"sr-t .*: results made with different settings or model weights "
                                            r"\(settings \w+, model aaa: seed1; settings \w+, model aaa: seed2\); "
                                            r"rerun them with the same settings, or pass --allow-mixed") as caught:
        build_report([tmp_path])
    assert "\n" not in str(caught.value)
    report = build_report([tmp_path], allow_mixed=True)
    assert any(note.startswith("MIXED SETTINGS averaged (--allow-mixed)") for note in report.notes)
    assert report.groups.set_index("group").loc["all", "mean"] == pytest.approx(70.0)


def test_report_averages_seeds_of_one_model_and_settings(tmp_path: Path) -> None:
    from langsamp_cli.report import build_report

    for seed, value in ((1, 0.5), (2, 0.7)):
        store = _store(tmp_path, seed, "aaa")
        store.write("deu_Latn", 10, {"acc@10": value})
        store.finalize()
    report = build_report([tmp_path])
    assert report.groups.set_index("group").loc["all", "mean"] == pytest.approx(60.0)
    assert not any("MIXED" in note for note in report.notes)


def test_report_never_averages_two_models_at_the_same_path(tmp_path: Path) -> None:
    from langsamp_cli.report import build_report

    for seed, fingerprint, value in ((1, "aaa", 0.5), (2, "bbb", 0.7)):
        store = _store(tmp_path, seed, fingerprint)
        store.write("deu_Latn", 10, {"acc@10": value})
        store.finalize()
    report = build_report([tmp_path])  # two folders, two columns (labelled by folder name), never one mean
    means = report.groups[report.groups.group == "all"].set_index("model")["mean"]
    assert sorted(means) == [pytest.approx(50.0), pytest.approx(70.0)] and len(set(means.index)) == 2


# Hashes of the settings records written before the settings became objects (issue 21): results made then
# must keep being reused, so the record built from the settings object hashes the same.
@pytest.mark.parametrize(("task", "flags", "expected"), [
    ("sr-t", {"model": "m", "data_dir": "d"}, "6adbef463f3e"),
    ("sr-t", {"model": "m", "data_dir": "d", "scoring": "margin", "layers": "4,6", "languages": "deu,fra"},
     "89592d6381f3"),
    ("sr-b", {"model": "m", "bible_dir": "b", "english_bible": "e", "scoring": "csls", "csls_k": 5},
     "d1dacfb4686a"),
])
def test_a_retrieval_record_hashes_as_before(task: str, flags: dict, expected: str) -> None:
    from langsamp_cli.task_config import resolve_settings
    from langsamp_cli.tasks.retrieval_run import retrieval_record
    from langsamp_cli.tasks.scoring import scoring_from

    settings = resolve_settings(task, flags)
    assert settings_hash(retrieval_record(settings, scoring_from(settings))) == expected


@pytest.mark.parametrize(("task", "flags", "expected"), [
    ("sib200", {"model": "m", "data_dir": "d"}, "9c36a52c6575"),
    ("pos", {"model": "m", "data_dir": "d", "lr": 3e-5, "max_train_samples": 50}, "8167e52c0e4f"),
    ("taxi1500", {"model": "m", "data_dir": "d", "bible": ["x.tsv"], "seeds": "1-3"}, "f3b0bc9ac4dc"),
])
def test_a_transfer_record_hashes_as_before(task: str, flags: dict, expected: str) -> None:
    from langsamp_cli.task_config import resolve_settings
    from langsamp_cli.tasks.transfer import transfer_record

    assert settings_hash(transfer_record(resolve_settings(task, flags), 2, "eng_Latn")) == expected


def test_the_keys_left_out_of_the_hash_come_from_the_settings_declarations() -> None:
    """The fields declared run_only or hashed=False, plus the model fingerprint; the same set the results format has
    always hashed without ('config', run-only, is never recorded in a unit)."""
    from langsamp_cli.results import config_hash, unhashed_keys

    assert unhashed_keys() == {"languages", "output_dir", "device", "batch_size", "eval_batch_size", "cache_dir",
                               "shard", "overwrite", "dtype", "mixed_precision", "keep_model", "no_cache",
                               "fingerprint", "config_files", "description", "config"}
    base = {"layer": 8, "pairs": 1000, "max_length": 512}
    assert config_hash({**base, "batch_size": 8, "device": "cpu"}) == config_hash({**base, "batch_size": 64})
    assert config_hash({**base, "layer": 7}) != config_hash(base)
