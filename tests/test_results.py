"""ResultStore units, shard merge, resume/overwrite, group means, shards and the printed table."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from langsamp_cli import languages
from langsamp_cli import results as R
from langsamp_cli.errors import LangsampError

# A fixed group table so the numbers below do not depend on languages.py's data.
FAKE_GROUPS = {
    "eng_Latn": {"head_tail": "head", "script_group": "Latn", "family": "Indo-European"},
    "rus_Cyrl": {"head_tail": "head", "script_group": "non-Latn", "family": "Indo-European"},
    "yor_Latn": {"head_tail": "tail", "script_group": "Latn", "family": "Atlantic-Congo"},
    "chr_Cher": {"head_tail": "tail", "script_group": "non-Latn", "family": None},
    "wol_Latn": {"head_tail": "tail", "script_group": "Latn", "family": "Atlantic-Congo"},
}


@pytest.fixture
def fake_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    def groups_for(lang_script: str) -> dict:
        if lang_script not in FAKE_GROUPS:
            raise LangsampError(f"unknown {lang_script}")
        return FAKE_GROUPS[lang_script]

    monkeypatch.setattr(languages, "groups_for", groups_for)
    monkeypatch.setattr(languages, "GROUP_ORDER", ["tail", "head", "Latn", "non-Latn", "all"])


SCORES = {"eng_Latn": (0.9, 0.95), "rus_Cyrl": (0.6, 0.7), "yor_Latn": (0.2, 0.4), "chr_Cher": (0.1, 0.3)}


def _store(tmp_path, **kwargs) -> R.ResultStore:
    args = {"task": "sr-b", "model": "/models/org/glot500", "seed": None, "config": {"layer": 8},
            "metric": "acc@10"} | kwargs
    return R.ResultStore(tmp_path, **args)


def _write_two_shards(tmp_path) -> None:
    names = sorted(SCORES)
    for shard in ((0, 2), (1, 2)):
        store = _store(tmp_path)  # one store per "process"
        for name in R.select_shard(names, shard):
            acc1, acc10 = SCORES[name]
            store.write(name, n=100, metrics={"acc@1": acc1, "acc@10": acc10})
    _store(tmp_path).skip("wol_Latn", "no test file")


def test_layout_and_two_shards_merge(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    store = _store(tmp_path)
    assert store.units_dir == tmp_path / "sr-b" / store.model_slug / "seedna" / "units"
    assert sorted(p.name for p in store.units_dir.iterdir()) == sorted(f"{n}.json" for n in [*SCORES, "wol_Latn"])
    path = store.finalize()
    merged = json.loads(path.read_text())
    assert [r["lang_script"] for r in merged["languages"]] == sorted(SCORES)
    assert merged["skipped"] == [{"lang_script": "wol_Latn", "reason": "no test file"}]
    assert merged["metric"] == "acc@10" and merged["metrics"][0] == "acc@10"
    eng = merged["languages"][1] if merged["languages"][1]["lang_script"] == "eng_Latn" else None
    assert eng and eng["lang"] == "eng" and eng["script"] == "Latn" and eng["head_tail"] == "head"
    assert eng["family"] == "Indo-European" and eng["n"] == 100
    prov = merged["provenance"]
    assert prov["model"] == "/models/org/glot500" and prov["config"] == {"layer": 8}
    assert prov["hostname"] and prov["time"].endswith("+00:00") and prov["toolkit_version"]


def test_group_means_match_hand_computation(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    groups = json.loads(_store(tmp_path).finalize().read_text())["groups"]
    assert list(groups) == ["tail", "head", "Latn", "non-Latn", "all"]
    assert groups["tail"]["n_languages"] == 2  # wol_Latn was skipped: not a member
    assert groups["tail"]["acc@10"] == pytest.approx((0.4 + 0.3) / 2)
    assert groups["head"]["acc@1"] == pytest.approx((0.9 + 0.6) / 2)
    assert groups["Latn"]["acc@10"] == pytest.approx((0.95 + 0.4) / 2)
    assert groups["non-Latn"]["acc@10"] == pytest.approx((0.7 + 0.3) / 2)
    assert groups["all"]["acc@10"] == pytest.approx(np.mean([v[1] for v in SCORES.values()]))
    families = json.loads((_store(tmp_path).run_dir / "results.json").read_text())["families"]
    assert families["Atlantic-Congo"] == {"n_languages": 1, "acc@1": 0.2, "acc@10": 0.4}


def test_results_csv_is_long_format(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    _store(tmp_path).finalize()
    frame = pd.read_csv(_store(tmp_path).run_dir / "results.csv")
    assert len(frame) == len(SCORES) * 2
    value = frame[(frame.lang_script == "rus_Cyrl") & (frame.metric == "acc@1")]["value"].item()
    assert value == pytest.approx(0.6)
    assert set(frame.head_tail) == {"head", "tail"}


def test_resume_skips_done_and_skipped_units(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    rerun = _store(tmp_path)
    assert rerun.is_done("eng_Latn") and rerun.is_done("wol_Latn")  # skips are not retried without --overwrite
    assert not rerun.is_done("yue_Hant")


def test_overwrite_recomputes_and_replaces(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    store = _store(tmp_path, overwrite=True)
    assert not store.is_done("eng_Latn")
    store.write("eng_Latn", n=50, metrics={"acc@1": 0.5, "acc@10": 0.5})
    store.write("wol_Latn", n=10, metrics={"acc@1": 0.1, "acc@10": 0.2})
    merged = json.loads(store.finalize().read_text())
    eng = next(r for r in merged["languages"] if r["lang_script"] == "eng_Latn")
    assert eng["n"] == 50 and merged["skipped"] == []
    assert len(merged["languages"]) == 5  # units not rerun stay (never deleted)


def test_seeds_and_models_get_separate_folders(tmp_path):
    a = _store(tmp_path, task="sib200", seed=3)
    b = _store(tmp_path, task="sib200", seed=3, model="/other/org/glot500")
    assert a.run_dir.name == "seed3" and a.run_dir != b.run_dir
    assert a.model_slug.startswith("org--glot500-") and R.model_slug("org/glot500") != a.model_slug
    assert R.model_slug("xlm-roberta-base").startswith("xlm-roberta-base-")


def test_bad_unit_name_and_metric(tmp_path):
    with pytest.raises(LangsampError, match="unit name"):
        _store(tmp_path).write("../evil", n=1, metrics={"f1": 1.0})
    with pytest.raises(LangsampError, match="is not a number"):
        _store(tmp_path).write("eng_Latn", n=1, metrics={"f1": "high"})


def test_corrupt_unit_is_one_line_error(tmp_path, fake_groups):
    store = _store(tmp_path)
    store.units_dir.mkdir(parents=True)
    (store.units_dir / "eng_Latn.json").write_text("{not json")
    with pytest.raises(LangsampError, match="eng_Latn.json: unreadable unit file"):
        store.finalize()


def test_unknown_language_gets_no_groups(tmp_path, fake_groups):
    store = _store(tmp_path)
    store.write("xyz_Latn", n=1, metrics={"acc@10": 1.0})
    record = json.loads(store.finalize().read_text())["languages"][0]
    assert record["head_tail"] is None and record["script_group"] is None


@pytest.mark.parametrize(("value", "expected"), [(None, (0, 1)), ("", (0, 1)), ("2/8", (2, 8)), (" 0 / 1 ", (0, 1))])
def test_parse_shard(value, expected):
    assert R.parse_shard(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("3/2", "--shard 3/2: index must be < count"),
    ("2/2", "index must be < count"),
    ("1/0", "count must be >= 1"),
    ("-1/4", "index must be >= 0"),
    ("a/b", "use i/N"),
    ("3", "use i/N"),
])
def test_parse_shard_errors(value, message):
    with pytest.raises(LangsampError, match=message.replace("/", "/")):
        R.parse_shard(value)


def test_select_shard_is_a_deterministic_partition():
    units = ["zul_Latn", "eng_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva", "eng_Latn"]
    shards = [R.select_shard(units, (i, 3)) for i in range(3)]
    assert shards[0] == ["arb_Arab", "rus_Cyrl"]
    assert sorted(sum(shards, [])) == sorted(set(units))
    assert R.select_shard(list(reversed(units)), (1, 3)) == shards[1]


def test_needs_merge_and_merge_run_dir(tmp_path, fake_groups):
    store = _store(tmp_path)
    assert not R.needs_merge(store.run_dir)
    store.write("eng_Latn", n=3, metrics={"acc@10": 1.0})
    assert R.needs_merge(store.run_dir)
    merged = json.loads(R.merge_run_dir(store.run_dir).read_text())
    assert merged["task"] == "sr-b" and merged["model"] == "/models/org/glot500" and merged["metric"] == "acc@10"
    assert not R.needs_merge(store.run_dir)


def test_print_results_table(tmp_path, fake_groups):
    _write_two_shards(tmp_path)
    path = _store(tmp_path).finalize()
    buffer = io.StringIO()
    R.print_results(path, console=Console(file=buffer, width=200))
    text = buffer.getvalue()
    lines = text.splitlines()
    eng = next(line for line in lines if "eng_Latn" in line)
    assert "head Latn" in eng and "95.0" in eng and "90.0" in eng
    assert text.index("chr_Cher") < text.index("tail") < text.index("non-Latn")
    all_row = next(line for line in lines if line.strip("│ ").startswith("all"))
    assert f"{100 * np.mean([v[0] for v in SCORES.values()]):.1f}" in all_row  # acc@1: 45.0
    assert "skipped 1: wol_Latn (no test file)" in text


def test_real_groups_for_when_available(tmp_path):
    languages = pytest.importorskip("langsamp_cli.languages")
    store = _store(tmp_path)
    store.write("eng_Latn", n=1, metrics={"acc@10": 1.0})
    record = json.loads(store.finalize().read_text())["languages"][0]
    assert record == record | {k: languages.groups_for("eng_Latn")[k] for k in ("head_tail", "script_group")}
    assert record["script_group"] == "Latn"
