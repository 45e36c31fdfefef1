"""Tatoeba pair discovery (official and LASER layouts) and line-aligned reading/validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from langsamp_cli.data.parallel import (
    ParallelDataError,
    discover_official_pairs,
    match_requested,
    read_line_aligned,
)
from langsamp_cli.data.tatoeba import discover_tatoeba


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def test_official_layout(tmp_path):
    write_lines(tmp_path / "tatoeba.deu_Latn-eng_Latn.deu_Latn", ["  Hallo Welt ", "Guten Tag"])
    write_lines(tmp_path / "tatoeba.deu_Latn-eng_Latn.eng_Latn", ["Hello world", "Good day"])
    write_lines(tmp_path / "bible.deu_Latn-eng_Latn.deu_Latn", ["other task"])
    pairs, problems = discover_tatoeba(tmp_path)
    assert list(pairs) == ["deu_Latn"] and problems == {}
    read = read_line_aligned(pairs["deu_Latn"])
    assert read.target == ["Hallo Welt", "Guten Tag"] and read.english == ["Hello world", "Good day"]
    assert list(discover_official_pairs(tmp_path, "bible")) == ["deu_Latn"]


def test_laser_layout_maps_codes_and_reports_conflicts(tmp_path):
    for code in ["afr", "rus"]:
        write_lines(tmp_path / f"tatoeba.{code}-eng.{code}", ["x"])
        write_lines(tmp_path / f"tatoeba.{code}-eng.eng", ["y"])
    write_lines(tmp_path / "tatoeba.rus_Cyrl-eng_Latn.rus_Cyrl", ["official"])
    write_lines(tmp_path / "tatoeba.rus_Cyrl-eng_Latn.eng_Latn", ["official"])
    pairs, problems = discover_tatoeba(tmp_path)
    assert sorted(pairs) == ["afr_Latn", "rus_Cyrl"]
    assert pairs["afr_Latn"].target.name == "tatoeba.afr-eng.afr" and pairs["afr_Latn"].english.name == "tatoeba.afr-eng.eng"
    assert pairs["rus_Cyrl"].target.name == "tatoeba.rus_Cyrl-eng_Latn.rus_Cyrl"  # official wins
    assert "already provided by tatoeba.rus_Cyrl-eng_Latn.rus_Cyrl" in problems["rus"]


def test_missing_partner_is_reported_when_read(tmp_path):
    write_lines(tmp_path / "tatoeba.afr-eng.afr", ["x"])
    pairs, _ = discover_tatoeba(tmp_path)
    with pytest.raises(ParallelDataError, match=r"tatoeba.afr-eng.eng: file not found"):
        read_line_aligned(pairs["afr_Latn"])


def test_unequal_lengths_and_empty_lines(tmp_path):
    write_lines(tmp_path / "tatoeba.afr-eng.afr", ["a", "b", "c"])
    write_lines(tmp_path / "tatoeba.afr-eng.eng", ["a", "b"])
    pairs, _ = discover_tatoeba(tmp_path)
    with pytest.raises(ParallelDataError, match="has 3 lines but .*tatoeba.afr-eng.eng has 2; .*line-aligned"):
        read_line_aligned(pairs["afr_Latn"])

    write_lines(tmp_path / "tatoeba.afr-eng.afr", [f"t{i}" if i != 4 else "  " for i in range(20)])
    write_lines(tmp_path / "tatoeba.afr-eng.eng", [f"e{i}" for i in range(20)])
    read = read_line_aligned(pairs["afr_Latn"])
    assert len(read) == 19 and read.dropped_empty == 1 and "t4" not in read.target and "e4" not in read.english
    assert read.target[4] == "t5" and read.english[4] == "e5"  # alignment kept
    assert read.record_extra()["dropped_empty"] == 1

    write_lines(tmp_path / "tatoeba.afr-eng.eng", ["" if i % 3 == 0 else f"e{i}" for i in range(20)])
    with pytest.raises(ParallelDataError, match=r"8 of 20 pairs have an empty side \(first at line 1\)"):
        read_line_aligned(pairs["afr_Latn"])


def test_invalid_utf8(tmp_path):
    (tmp_path / "tatoeba.afr-eng.afr").write_bytes(b"ok\n\xff\xfe bad\n")
    write_lines(tmp_path / "tatoeba.afr-eng.eng", ["a", "b"])
    pairs, _ = discover_tatoeba(tmp_path)
    with pytest.raises(ParallelDataError, match=r"tatoeba.afr-eng.afr: not valid UTF-8 at byte 3"):
        read_line_aligned(pairs["afr_Latn"])


def test_real_laser_release(shared_data):
    data_dir = shared_data / "tatoeba" / "v1"
    pairs, problems = discover_tatoeba(data_dir)
    assert len(pairs) + len(problems) == 112
    assert len(pairs) >= 105, problems
    for lang, code in [("afr_Latn", "afr"), ("rus_Cyrl", "rus"), ("jpn_Jpan", "jpn"), ("ell_Grek", "ell")]:
        assert pairs[lang].code == code
    lengths = {lang: len(read_line_aligned(files)) for lang, files in pairs.items()}
    assert max(lengths.values()) == 1000 and min(lengths.values()) >= 100
    assert all(read_line_aligned(files).dropped_empty == 0 for files in pairs.values())


def test_real_laser_ids_cover_the_glot500_list(shared_data):
    listed = {line.split("\t")[0] for line in (shared_data / "metadata/glot500/tatoeba_lang_list.txt").read_text().split("\n") if line.strip()}
    pairs, _ = discover_tatoeba(shared_data / "tatoeba" / "v1")
    missing = sorted(lang for lang, found in match_requested(listed, pairs).items() if found is None)
    assert len(listed) == 98 and len(missing) <= 3, missing


def test_bare_codes_match_the_data_in_another_script():
    """`--languages uzb` guesses uzb_Latn; when only uzb_Cyrl exists it is served, under its own id."""
    from langsamp_cli.data.parallel import served_name
    from langsamp_cli.tasks import requested_languages

    requested, bare = requested_languages("uzb,srp_Cyrl,oji,eng_Latn")
    assert requested == ["uzb_Latn", "srp_Cyrl", "oji_Latn", "eng_Latn"] and bare == {"uzb_Latn", "oji_Latn"}
    available = ["uzb_Cyrl", "srp_Latn", "oji_Cans", "oji_Latn_x", "eng_Latn"]
    found = match_requested(requested, available, bare)
    assert found == {"uzb_Latn": "uzb_Cyrl", "srp_Cyrl": None, "oji_Latn": None, "eng_Latn": "eng_Latn"}
    assert match_requested(requested, available)["uzb_Latn"] is None  # without the bare set: exact or alias only
    assert served_name("uzb_Latn", "uzb_Cyrl", bare) == "uzb_Cyrl" and served_name("eng_Latn", "eng_Latn") == "eng_Latn"
    assert served_name("zho_Hani", "zho_Hans") == "zho_Hani"  # asked for with a script: the Glot500 id is kept
    assert served_name("zho_Hani", "zho_Hans", {"zho_Hani"}) == "zho_Hans"  # a bare `zho`: the data's id


def test_real_laser_bare_codes(shared_data):
    from langsamp_cli.task_config import load_settings
    from langsamp_cli.tasks.retrieval import plan_sr_t

    settings = load_settings("sr-t", {"data_dir": str(shared_data / "tatoeba" / "v1"), "languages": "uzb,srp,deu"})
    plan = plan_sr_t(settings, {})
    assert sorted(plan.units) == ["deu_Latn", "srp_Latn", "uzb_Cyrl"] and not plan.problems
    assert len(plan.units["uzb_Cyrl"].load()) > 100
