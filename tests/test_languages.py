from pathlib import Path

import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.languages import (
    GROUP_ORDER,
    detect_script,
    groups_for,
    lang_script_aliases,
    laser_code_to_lang_script,
    parse_lang_script,
    parse_language_list,
    resolve_alias,
)


@pytest.mark.parametrize(
    "code,expected",
    [
        ("eng_Latn", "eng_Latn"),
        ("eng-Latn", "eng_Latn"),
        ("eng_latn", "eng_Latn"),
        ("en", "eng_Latn"),
        ("zh-Hans", "zho_Hans"),
        ("ger", "deu_Latn"),
        ("ru", "rus_Cyrl"),
        ("yue_Hani", "yue_Hani"),
    ],
)
def test_parse_variants(code: str, expected: str) -> None:
    assert parse_lang_script(code).id == expected


def test_bare_language_uses_detected_script_when_text_given() -> None:
    assert parse_lang_script("srp", text_sample="Менинг бир ўғлим").id == "srp_Cyrl"
    assert parse_lang_script("srp", text_sample="Marija i ja radimo zajedno.").id == "srp_Latn"


def test_unknown_language_suggests_close_matches() -> None:
    with pytest.raises(LangsampError, match=r"unknown language code 'englsh'.*did you mean: .*eng"):
        parse_lang_script("englsh_Latn")
    with pytest.raises(LangsampError, match=r"unknown script code 'Latm'.*Latn"):
        parse_lang_script("eng_Latm")
    with pytest.raises(LangsampError, match="not a language-script id"):
        parse_lang_script("english language")


@pytest.mark.parametrize(
    "text,script",
    [
        ("In the beginning was the word.", "Latn"),
        ("В начале было слово.", "Cyrl"),
        ("太初有道，道与人同在。", "Hani"),
        ("これは日本語の文です。", "Jpan"),
        ("한국어 문장입니다", "Hang"),
        ("في البدء كانت الكلمة", "Arab"),
        ("आदि में वचन था", "Deva"),
        ("Στην αρχή ήταν ο λόγος", "Grek"),
    ],
)
def test_detect_script(text: str, script: str) -> None:
    assert detect_script(text) == script


def test_groups() -> None:
    assert groups_for("eng_Latn") == {"head_tail": "head", "script_group": "Latn", "family": "Indo-European"}
    assert groups_for("yue_Hani") == {"head_tail": "tail", "script_group": "non-Latn", "family": "Sino-Tibetan"}
    assert groups_for("xyz_Latn")["family"] is None
    assert GROUP_ORDER == ["tail", "head", "Latn", "non-Latn", "all"]


def test_aliases() -> None:
    assert "zho_Hans" in lang_script_aliases("zho_Hani")
    assert lang_script_aliases("swa_Latn") == ["swh_Latn"]
    assert resolve_alias("zho_Hani", {"zho_Hans", "eng_Latn"}) == "zho_Hans"
    assert resolve_alias("eng_Latn", {"eng_Latn"}) == "eng_Latn"
    assert resolve_alias("tur_Latn", {"eng_Latn"}) is None


def test_language_list_from_string_and_file(tmp_path: Path) -> None:
    assert parse_language_list("en, rus_Cyrl,eng_Latn") == ["eng_Latn", "rus_Cyrl"]
    assert parse_language_list(None) is None  # None = every language; an empty value is an error (below)
    for empty in ("", " ", ",", " , "):
        with pytest.raises(LangsampError, match="no language ids given"):
            parse_language_list(empty)
    comments = tmp_path / "comments.txt"
    comments.write_text("# to do\n\n  # later\n", encoding="utf-8")
    with pytest.raises(LangsampError, match=r"comments.txt: no language ids in the file"):
        parse_language_list(str(comments))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("eng_Latn\nfra_Latn # français\n".encode("latin-1"))
    with pytest.raises(LangsampError, match=r"latin1.txt:2: not UTF-8 text \(byte offset 24\)"):
        parse_language_list(str(latin1))
    good = tmp_path / "langs.txt"
    good.write_text("# my list\neng_Latn\t1\n\nzho_Hani 0\n", encoding="utf-8")
    assert parse_language_list(str(good)) == ["eng_Latn", "zho_Hani"]
    bad = tmp_path / "bad.txt"
    bad.write_text("eng_Latn\nqqqq_Latn\n", encoding="utf-8")
    with pytest.raises(LangsampError, match=r"bad.txt:2: unknown language code 'qqqq'"):
        parse_language_list(str(bad))


def _flags(path: Path) -> dict[str, bool]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row[0]: row[1].strip() == "1" for row in rows}


@pytest.mark.parametrize("list_name", ["bible_lang_list.txt", "tatoeba_lang_list.txt"])
def test_head_table_matches_the_papers_flags(shared_data: Path, list_name: str) -> None:
    flags = _flags(shared_data / "metadata" / "glot500" / list_name)
    disagree = [i for i, head in flags.items() if (groups_for(i)["head_tail"] == "head") != head]
    assert len(disagree) <= 0.02 * len(flags), f"head/tail disagreements: {disagree}"
    for lang_id in flags:
        assert parse_lang_script(lang_id).id == lang_id


def test_laser_codes_reach_the_papers_tatoeba_ids(shared_data: Path) -> None:
    folder = shared_data / "tatoeba" / "v1"
    codes = {p.name.split(".")[1].split("-")[0] for p in folder.glob("tatoeba.*-eng.*")}
    mapped = {code: laser_code_to_lang_script(code) for code in codes}
    assert len(set(mapped.values())) == len(mapped), "two LASER codes map to one id"
    paper_ids = set(_flags(shared_data / "metadata" / "glot500" / "tatoeba_lang_list.txt"))
    assert paper_ids <= set(mapped.values()), sorted(paper_ids - set(mapped.values()))
