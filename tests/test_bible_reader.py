"""Whole-Bible readers (verse-id TSV, CES XML), language ids of Bible files, SR-B verse pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from langsamp_cli.data.bible import (
    bible_language,
    bible_pairs,
    canonical_verse_id,
    discover_bibles,
    read_bible,
)
from langsamp_cli.data.parallel import ParallelDataError
from langsamp_cli.errors import LangsampError

CES_TEMPLATE = """<?xml version="1.0" ?>
<cesDoc version="4">
  <cesHeader version="2"><profileDesc><langUsage>
    <language id="zu" iso639="{iso}">Some language</language>
  </langUsage></profileDesc></cesHeader>
  <text><body id="Bible">
    <div id="b.MAT" type="book"><div id="b.MAT.1" type="chapter">
      <seg id="b.MAT.1.1" type="verse">
        First   verse
        of Matthew.
      </seg>
      <seg id="b.MAT.1.2" type="verse"> </seg>
      <seg id="b.MAT.1.3" type="verse">Third verse.</seg>
    </div></div>
    <div id="b.JOH" type="book"><div id="b.JOH.3" type="chapter">
      <seg id="b.JOH.3.16" type="verse">John three sixteen.</seg>
    </div></div>
    <div id="b.GEN" type="book"><div id="b.GEN.1" type="chapter">
      <seg id="b.GEN.1.1" type="verse">In the beginning.</seg>
    </div></div>
  </body></text>
</cesDoc>
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_canonical_verse_id():
    assert canonical_verse_id("MAT", 1, 1) == 40001001
    assert canonical_verse_id(40, 1, 1) == 40001001
    assert canonical_verse_id("GEN", 1, 1) == 1001001
    assert canonical_verse_id("REV", 22, 21) == 66022021
    assert canonical_verse_id("JOH", 3, 16) == canonical_verse_id("JHN", 3, 16) == 43003016
    assert canonical_verse_id("PHI", 1, 1) == 50001001 and canonical_verse_id("PHM", 1, 1) == 57001001
    with pytest.raises(LangsampError, match="unknown Bible book code 'XYZ'"):
        canonical_verse_id("XYZ", 1, 1)


def test_read_ces_xml(tmp_path):
    verses = read_bible(write(tmp_path / "Zulu-NT.xml", CES_TEMPLATE.format(iso="zul")))
    assert verses == {
        40001001: "First verse of Matthew.",
        40001003: "Third verse.",  # 40001002 is empty: treated as absent
        43003016: "John three sixteen.",
        1001001: "In the beginning.",
    }


def test_read_tsv_and_format_detection(tmp_path):
    text = "40001001\tFirst verse.\n\n40001002\t \n43003016\tJohn.\n"
    assert read_bible(write(tmp_path / "x.tsv", text)) == {40001001: "First verse.", 43003016: "John."}
    # no telling extension: detected from the content
    assert read_bible(write(tmp_path / "bible.data", text)) == {40001001: "First verse.", 43003016: "John."}
    assert 43003016 in read_bible(write(tmp_path / "ces.data", CES_TEMPLATE.format(iso="zul")))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.tsv", "40001001\tok\nMAT 1:2 no tab\n", r"bad.tsv:2: expected 'verse_id<TAB>text'"),
        ("dup.tsv", "40001001\ta\n40001002\tb\n40001001\tc\n", r"dup.tsv:3: verse id 40001001 already seen at line 1"),
        ("broken.xml", "<cesDoc><seg id='b.MAT.1.1'>x</cesDoc>", r"broken.xml:1:\d+: not well-formed CES XML"),
        ("book.xml", "<cesDoc><seg id='b.XXX.1.1' type='verse'>x</seg></cesDoc>", "unknown book code 'XXX'"),
        ("id.xml", "<cesDoc><seg id='MAT-1-1' type='verse'>x</seg></cesDoc>", "not of the form b.BOOK.chapter.verse"),
    ],
)
def test_bad_bibles_name_file_and_line(tmp_path, name, text, message):
    with pytest.raises(LangsampError, match=message):
        read_bible(write(tmp_path / name, text))


def test_invalid_utf8_and_missing_file(tmp_path):
    (tmp_path / "latin1.tsv").write_bytes("40001001\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(LangsampError, match="latin1.tsv: not valid UTF-8"):
        read_bible(tmp_path / "latin1.tsv")
    with pytest.raises(LangsampError, match="Bible file not found"):
        read_bible(tmp_path / "absent.tsv")


def test_bible_pairs_first_n_shared_in_canonical_order():
    english = {v: f"en {v}" for v in [1001001, 40001001, 40001002, 40001003, 43003016]}
    target = {v: f"xx {v}" for v in [43003016, 40001003, 40001001, 66022021]}
    pairs = bible_pairs("xxx_Latn", target, english, n=2, sources=["t", "e"])
    assert pairs.ids == [40001001, 40001003]
    assert pairs.target == ["xx 40001001", "xx 40001003"] and pairs.english == ["en 40001001", "en 40001003"]
    assert len(bible_pairs("xxx_Latn", target, english, n=500)) == 3
    with pytest.raises(ParallelDataError, match="no verse in common"):
        bible_pairs("xxx_Latn", {66022021: "x"}, english)


def test_language_of_bible_files(tmp_path):
    assert bible_language(write(tmp_path / "spa_Latn.RV1909.tsv", "40001001\tx\n")) == "spa_Latn"
    assert bible_language(write(tmp_path / "Zulu-NT.xml", CES_TEMPLATE.format(iso="zul"))) == "zul_Latn"
    with pytest.raises(LangsampError, match="cannot tell its language; rename it"):
        bible_language(write(tmp_path / "mystery.tsv", "40001001\tx\n"))


def test_discover_bibles_records_problems_and_extra_editions(tmp_path):
    write(tmp_path / "eng_Latn.KJV.tsv", "40001001\tx\n")
    write(tmp_path / "spa_Latn.A.tsv", "40001001\tx\n")
    write(tmp_path / "spa_Latn.B.tsv", "40001001\tx\n")
    write(tmp_path / "mystery.tsv", "40001001\tx\n")
    with pytest.warns(UserWarning, match="spa_Latn already comes from spa_Latn.A.tsv"):
        found = discover_bibles(tmp_path, exclude=tmp_path / "eng_Latn.KJV.tsv")
    assert found.files == {"spa_Latn": tmp_path / "spa_Latn.A.tsv"}
    assert found.other_editions == {"spa_Latn": [tmp_path / "spa_Latn.B.tsv"]}
    assert list(found.problems) == ["mystery.tsv"]


# ---------------------------------------------------------------------------- the real shared files
def test_real_sword_tsv_counts(shared_data):
    sword = shared_data / "bible" / "sword"
    counts = {name: len(read_bible(sword / name)) for name in ["eng_Latn.KJV.tsv", "eng_Latn.WEB.tsv", "spa_Latn.RV1909.tsv"]}
    assert counts == {"eng_Latn.KJV.tsv": 31102, "eng_Latn.WEB.tsv": 31095, "spa_Latn.RV1909.tsv": 31084}
    kjv = read_bible(sword / "eng_Latn.KJV.tsv")
    assert kjv[1001001].startswith("In the beginning God created")
    assert kjv[40001001].startswith("The book of the generation of Jesus Christ")


def test_real_ces_files_and_their_languages(shared_data):
    bibles = shared_data / "bible" / "christos-c" / "bibles"
    zulu = read_bible(bibles / "Zulu-NT.xml")
    assert min(zulu) == 40001001 and max(zulu) == 66022021 and 7900 < len(zulu) < 8000
    armenian = read_bible(bibles / "Armenian-PART.xml")
    assert min(armenian) == 1001001  # partial Bible: Genesis and Exodus are there too
    expected = {"Zulu-NT.xml": "zul_Latn", "Cherokee-NT.xml": "chr_Cher", "Armenian-PART.xml": "hye_Armn",
                "Tachelhit-NT.xml": "shi_Latn", "Coptic-NT.xml": "cop_Copt", "Syriac-NT.xml": "syr_Syrc"}
    assert {name: bible_language(bibles / name) for name in expected} == expected


def test_real_pairs_with_kjv(shared_data):
    kjv = read_bible(shared_data / "bible" / "sword" / "eng_Latn.KJV.tsv")
    zulu = read_bible(shared_data / "bible" / "christos-c" / "bibles" / "Zulu-NT.xml")
    pairs = bible_pairs("zul_Latn", zulu, kjv)
    assert len(pairs) == 500 and pairs.ids[0] == 40001001 and pairs.ids == sorted(pairs.ids)
    assert all(pairs.target) and all(pairs.english)
